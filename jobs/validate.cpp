#include "jobs/validate.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/check.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/metrics.h"
#include "jobs/anchor.h"
#include "jobs/batching.h"
#include "jobs/classifier_trainer.h"
#include "kernels/reparameterize.h"
#include "models/checkpoint.h"

namespace cuvae {

namespace {

std::string fmt(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

int64_t argmax_row(const std::vector<float>& p, int64_t i, int64_t K) {
  const float* r = p.data() + i * K;
  return std::max_element(r, r + K) - r;
}

// Fréchet distance between Gaussians fitted to the classifier's penultimate features of `ref`
// and `gen` (F features): ||m1 − m2||² + tr(C1 + C2 − 2 (C1 C2)^½), the FID's formula on this
// classifier's features (not Inception-v3's, so not an FID).
double classifier_frechet_distance(const ClassifierOutputs& ref, const ClassifierOutputs& gen, int64_t F) {
  std::vector<double> m1, c1, m2, c2;
  feature_moments(ref.features, ref.n, F, m1, c1);
  feature_moments(gen.features, gen.n, F, m2, c2);
  return frechet_distance(m1, c1, m2, c2);
}

}  // namespace

ClassifierOutputs run_classifier(Context& ctx, ResNet18& clf, Tensor& images) {
  ClassifierOutputs out;
  out.n = images.dim(0);
  for (int64_t first = 0; first < out.n; first += 500) {
    const int64_t b = std::min<int64_t>(500, out.n - first);
    Tensor x = images.rows(first, first + b);
    std::vector<float> p = clf.classify(ctx, x);
    std::vector<float> f = clf.features().to_vector();
    out.probs.insert(out.probs.end(), p.begin(), p.end());
    out.features.insert(out.features.end(), f.begin(), f.end());
  }
  return out;
}

SampleQuality sample_quality(Context& ctx, ConvVAE& vae, ResNet18& clf, const Dataset& test_all, int64_t prior,
                             int64_t recon, int64_t reference, uint64_t seed, const ClassifierOutputs* ref_in) {
  const VaeConfig& vc = vae.config();
  const ResNetConfig& rc = clf.config();
  if (vc.channels != rc.channels || vc.height != rc.height || vc.width != rc.width)
    CUVAE_FAIL("the generative model makes " << vc.channels << "x" << vc.height << "x" << vc.width
               << " images but the classifier classifies " << rc.channels << "x" << rc.height << "x" << rc.width);
  CUVAE_CHECK(prior >= 2 && recon >= 2 && reference >= 2, "sample_quality: need at least 2 images of each kind");
  const int64_t K = rc.classes, F = rc.feature_dim(), D = vc.latent;
  Dataset test = subset(test_all, std::max(reference, recon));
  DeviceDataset dd(test, ctx.device());
  const int64_t nref = std::min(reference, test.n), nrec = std::min(recon, test.n);
  Tensor test_images = device_images(ctx, dd);
  ClassifierOutputs own_ref;
  if (ref_in == nullptr) {
    Tensor ref_view = test_images.rows(0, nref);
    own_ref = run_classifier(ctx, clf, ref_view);
  }
  const ClassifierOutputs& ref = ref_in != nullptr ? *ref_in : own_ref;
  SampleQuality q;
  q.reference_n = ref.n;
  {
    Tensor z({prior, D}, ctx.device());
    sample_normal(ctx, z, seed, 0x9a10c000ull);
    std::vector<int32_t> cycle;  // a CVAE's prior samples take the classes in turn
    for (int64_t i = 0; vc.is_cvae() && i < prior; ++i) cycle.push_back(static_cast<int32_t>(i % vc.classes));
    Tensor img = vae.decode_images(ctx, z.to_vector(), prior, vc.is_cvae() ? &cycle : nullptr);
    const ClassifierOutputs c = run_classifier(ctx, clf, img);
    q.prior_n = c.n;
    q.prior_histogram.assign(static_cast<size_t>(K), 0);
    double top1 = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      const int64_t p = argmax_row(c.probs, i, K);
      q.prior_histogram[static_cast<size_t>(p)] += 1;
      top1 += c.probs[static_cast<size_t>(i * K + p)];
    }
    q.prior_top1_confidence = top1 / static_cast<double>(c.n);
    for (int64_t h : q.prior_histogram)
      if (h > 0) {
        const double p = static_cast<double>(h) / static_cast<double>(c.n);
        q.prior_class_entropy -= p * std::log(p);
      }
    q.prior_frechet = classifier_frechet_distance(ref, c, F);
  }
  {
    Tensor originals = test_images.rows(0, nrec);
    std::vector<float> rec_all;
    for_each_batch(ctx, dd, 500, nrec, [&](const Batch& b) {
      vae.encode(ctx, b.x, &b.labels);
      const std::vector<float> mu = vae.mu().to_vector();
      const std::vector<int32_t> y = b.labels.download(b.size);
      const std::vector<float> h = vae.decode_images(ctx, mu, b.size, vc.is_cvae() ? &y : nullptr).to_vector();
      rec_all.insert(rec_all.end(), h.begin(), h.end());
    });
    Tensor rec = Tensor::from_vector(rec_all, {nrec, vc.channels, vc.height, vc.width}, ctx.device());
    const ClassifierOutputs c = run_classifier(ctx, clf, rec);
    const ClassifierOutputs o = run_classifier(ctx, clf, originals);
    int64_t right = 0, right_o = 0;
    std::vector<int64_t> class_right(static_cast<size_t>(K), 0), class_right_o(static_cast<size_t>(K), 0);
    q.recon_class_n.assign(static_cast<size_t>(K), 0);
    for (int64_t i = 0; i < nrec; ++i) {
      const int64_t y = test.labels[static_cast<size_t>(i)];
      const bool r = argmax_row(c.probs, i, K) == y, r_o = argmax_row(o.probs, i, K) == y;
      right += r;
      right_o += r_o;
      if (y >= 0 && y < K) {
        q.recon_class_n[static_cast<size_t>(y)] += 1;
        class_right[static_cast<size_t>(y)] += r;
        class_right_o[static_cast<size_t>(y)] += r_o;
      }
    }
    for (int64_t k = 0; k < K; ++k) {
      const double n_k = static_cast<double>(std::max<int64_t>(1, q.recon_class_n[static_cast<size_t>(k)]));
      q.recon_class_accuracy.push_back(static_cast<double>(class_right[static_cast<size_t>(k)]) / n_k);
      q.originals_class_accuracy.push_back(static_cast<double>(class_right_o[static_cast<size_t>(k)]) / n_k);
    }
    q.recon_n = nrec;
    q.recon_accuracy = static_cast<double>(right) / static_cast<double>(nrec);
    q.originals_accuracy = static_cast<double>(right_o) / static_cast<double>(nrec);
    q.recon_frechet = classifier_frechet_distance(ref, c, F);
  }
  return q;
}

void feature_moments(const std::vector<float>& features, int64_t n, int64_t F, std::vector<double>& mean,
                     std::vector<double>& cov) {
  CUVAE_CHECK(n >= 2 && static_cast<int64_t>(features.size()) == n * F,
              "feature_moments: need at least 2 rows of " << F << " features, got " << features.size() << " values");
  Eigen::MatrixXd X(n, F);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < F; ++j) X(i, j) = features[static_cast<size_t>(i * F + j)];
  const Eigen::VectorXd m = X.colwise().mean();
  X.rowwise() -= m.transpose();
  const Eigen::MatrixXd C = (X.transpose() * X) / static_cast<double>(n);
  mean.assign(m.data(), m.data() + F);
  cov.resize(static_cast<size_t>(F * F));
  Eigen::Map<Eigen::MatrixXd>(cov.data(), F, F) = C;  // symmetric: storage order does not matter
}

double frechet_distance(const std::vector<double>& m1, const std::vector<double>& c1, const std::vector<double>& m2,
                        const std::vector<double>& c2) {
  const int64_t F = static_cast<int64_t>(m1.size());
  CUVAE_CHECK(F > 0 && static_cast<int64_t>(m2.size()) == F && static_cast<int64_t>(c1.size()) == F * F &&
                  static_cast<int64_t>(c2.size()) == F * F,
              "frechet_distance: mismatched sizes");
  const Eigen::Map<const Eigen::VectorXd> a(m1.data(), F), b(m2.data(), F);
  const Eigen::Map<const Eigen::MatrixXd> A(c1.data(), F, F), B(c2.data(), F, F);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ea(A);
  CUVAE_CHECK(ea.info() == Eigen::Success, "frechet_distance: eigendecomposition failed");
  const Eigen::MatrixXd sa = ea.eigenvectors() * ea.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal() *
                             ea.eigenvectors().transpose();
  const Eigen::MatrixXd M = sa * B * sa;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> em(0.5 * (M + M.transpose()), Eigen::EigenvaluesOnly);
  CUVAE_CHECK(em.info() == Eigen::Success, "frechet_distance: eigendecomposition failed");
  const double tr_sqrt = em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  return (a - b).squaredNorm() + A.trace() + B.trace() - 2.0 * tr_sqrt;
}

namespace {

// The models `cuvae validate` judges and judges with, loaded on the context's device.
struct ValidationModels {
  std::unique_ptr<ConvVAE> vae;    // --vae: a VAE, an AE or a CVAE
  std::unique_ptr<ConvVAE> other;  // --compare-vae: an unconditional VAE beside a CVAE (or null)
  std::unique_ptr<ResNet18> clf;   // --classifier
};

void check_validate_options(const ValidateOptions& opt) {
  CUVAE_REQUIRE(opt.per_class >= 2 && opt.per_class <= 100000, option("n") << " must be in [2, 100000], got " << opt.per_class);
  CUVAE_REQUIRE(opt.noise >= 0 && std::isfinite(opt.noise), option("noise") << " must be >= 0, got " << opt.noise);
  CUVAE_REQUIRE(opt.components >= 1 && opt.components <= 64, option("components") << " must be in [1, 64], got " << opt.components);
  CUVAE_REQUIRE(opt.prior >= 2 && opt.recon >= 2 && opt.reference >= 2, option("prior") << ", " << option("recon") << " and " << option("reference") << " must be at least 2");
}

// Loads the three checkpoints and checks that they make and take images of one size.
ValidationModels load_validation_models(const Context& ctx, const ValidateOptions& opt) {
  ValidationModels m;
  m.vae = load_vae(opt.vae, ctx.device(), true);
  const VaeConfig& vc = m.vae->config();
  m.clf = load_resnet(opt.classifier, ctx.device(), vc.dataset.empty() ? "mnist" : vc.dataset);
  if (!opt.compare_vae.empty()) {
    if (!vc.is_cvae()) CUVAE_FAIL(option("compare_vae") << " goes with a CVAE in " << option("vae") << "; " << opt.vae << " is not conditional");
    m.other = load_vae(opt.compare_vae, ctx.device());
    const VaeConfig& oc = m.other->config();
    if (oc.channels != vc.channels || oc.height != vc.height || oc.width != vc.width)
      CUVAE_FAIL(option("compare_vae") << " " << opt.compare_vae << " makes images of another size than " << opt.vae);
  }
  const ResNetConfig& rc = m.clf->config();
  if (vc.channels != rc.channels || vc.height != rc.height || vc.width != rc.width)
    CUVAE_FAIL(opt.vae << " makes " << vc.channels << "x" << vc.height << "x" << vc.width << " images but "
                       << opt.classifier << " classifies " << rc.channels << "x" << rc.height << "x" << rc.width);
  return m;
}

// What the generated images of each class are judged against: the classifier, its outputs on
// the reference test images, and the classes' names.
struct Judge {
  Context& ctx;
  ResNet18& clf;
  const ClassifierOutputs& ref;
  const std::vector<std::string>& names;
  int64_t K, F;
};

// opt.per_class images of class k: decoded from z ~ N(mean_k, s²·Σ_k) with class statistics
// `anchors`, or without them (a CVAE) from z ~ N(0, s²I) with the label k.
Tensor class_samples(Context& ctx, ConvVAE& model, const AnchorStats* anchors, int64_t k, const ValidateOptions& opt) {
  if (anchors != nullptr) {
    std::vector<float> z = sample_anchored(*anchors, static_cast<int>(k), opt.per_class, opt.noise, opt.seed);
    return model.decode_images(ctx, z, opt.per_class);
  }
  Tensor z({opt.per_class, model.config().latent}, ctx.device());
  sample_normal(ctx, z, opt.seed, 0xc0a0000ull + static_cast<uint64_t>(k));
  std::vector<float> zh = z.to_vector();
  for (float& v : zh) v = static_cast<float>(v * opt.noise);  // z ~ N(0, s²I), s = --noise as for anchored samples
  const std::vector<int32_t> y(static_cast<size_t>(opt.per_class), static_cast<int32_t>(k));
  return model.decode_images(ctx, zh, opt.per_class, &y);
}

// Classifies opt.per_class samples of every class (class_samples) and returns their per-class and
// overall accuracy and confidence and their Fréchet distance to the reference; the first
// min(10, per_class) images of each class are appended to `grid` when given.
nlohmann::json judge_class_samples(const Judge& judge, ConvVAE& model, const AnchorStats* anchors,
                                   const std::string& label, const ValidateOptions& opt, std::vector<float>* grid) {
  const int64_t K = judge.K, grid_cols = std::min<int64_t>(10, opt.per_class);
  ClassifierOutputs all;
  int64_t right_total = 0;
  double conf_total = 0;
  nlohmann::json per_class = nlohmann::json::array();
  ProgressBar bar(label, K, opt.progress);
  for (int64_t k = 0; k < K; ++k) {
    Tensor img = class_samples(judge.ctx, model, anchors, k, opt);
    const ClassifierOutputs c = run_classifier(judge.ctx, judge.clf, img);
    int64_t right = 0;
    double conf = 0, top1 = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      right += argmax_row(c.probs, i, K) == k;
      conf += c.probs[static_cast<size_t>(i * K + k)];
      top1 += c.probs[static_cast<size_t>(i * K + argmax_row(c.probs, i, K))];
    }
    right_total += right;
    conf_total += conf;
    per_class.push_back({{"class", k}, {"name", judge.names[static_cast<size_t>(k % 10)]}, {"n", c.n},
                         {"accuracy", double(right) / c.n}, {"confidence", conf / c.n}, {"top1_confidence", top1 / c.n}});
    all.probs.insert(all.probs.end(), c.probs.begin(), c.probs.end());
    all.features.insert(all.features.end(), c.features.begin(), c.features.end());
    all.n += c.n;
    if (grid != nullptr) {
      const std::vector<float> h = img.rows(0, grid_cols).to_vector();
      grid->insert(grid->end(), h.begin(), h.end());
    }
    bar.update(k + 1);
  }
  bar.finish();
  const int64_t total = K * opt.per_class;
  return {{"per_class", per_class}, {"n", total}, {"accuracy", double(right_total) / total},
          {"confidence", conf_total / total}, {"frechet", classifier_frechet_distance(judge.ref, all, judge.F)}};
}

// validation.json's "prior" and "reconstructions" entries.
void add_sample_quality(nlohmann::json& j, const SampleQuality& q) {
  j["prior"] = {{"n", q.prior_n},
                {"histogram", q.prior_histogram},
                {"top1_confidence", q.prior_top1_confidence},
                {"class_entropy", q.prior_class_entropy},
                {"frechet", q.prior_frechet}};
  j["reconstructions"] = {{"n", q.recon_n},
                          {"accuracy", q.recon_accuracy},
                          {"originals_accuracy", q.originals_accuracy},
                          {"per_class_n", q.recon_class_n},
                          {"per_class_accuracy", q.recon_class_accuracy},
                          {"per_class_originals_accuracy", q.originals_class_accuracy},
                          {"frechet", q.recon_frechet}};
}

// validation.md's table of the class-anchored (or class-conditioned) samples.
void write_class_table(std::ostream& md, const nlohmann::json& j, const ValidateOptions& opt, bool conditional, bool other) {
  if (conditional)
    md << "## Class-conditioned samples of the CVAE (z ~ N(0, s^2 I) with the class's label, s = " << opt.noise << ", "
       << opt.per_class << " per class)\n\n";
  else if (opt.components > 1)
    md << "## Class-anchored samples (a component m of class c's " << opt.components
       << "-component Gaussian mixture by its weight, z ~ N(mean_cm, s^2 Sigma_cm), s = " << opt.noise << ", "
       << opt.per_class << " per class)\n\n";
  else
    md << "## Class-anchored samples (z ~ N(mean_c, s^2 Sigma_c), s = " << opt.noise << ", " << opt.per_class
       << " per class)\n\n";
  md << "| class | name | accuracy | mean confidence (intended class) | mean top-1 confidence |";
  if (other) md << " anchored VAE accuracy | anchored VAE confidence |";
  md << "\n|---|---|---|---|---|" << (other ? "---|---|" : "") << "\n";
  for (size_t r = 0; r < j["anchored"]["per_class"].size(); ++r) {
    const auto& row = j["anchored"]["per_class"][r];
    md << "| " << row["class"].get<int64_t>() << " | " << row["name"].get<std::string>() << " | "
       << fmt(100 * row["accuracy"].get<double>(), 1) << "% | " << fmt(row["confidence"].get<double>(), 3) << " | "
       << fmt(row["top1_confidence"].get<double>(), 3) << " |";
    if (other) {
      const auto& o = j["compare_anchored"]["per_class"][r];
      md << " " << fmt(100 * o["accuracy"].get<double>(), 1) << "% | " << fmt(o["confidence"].get<double>(), 3) << " |";
    }
    md << "\n";
  }
  md << "| all | | " << fmt(100 * j["anchored"]["accuracy"].get<double>(), 1) << "% | "
     << fmt(j["anchored"]["confidence"].get<double>(), 3) << " | |";
  if (other)
    md << " " << fmt(100 * j["compare_anchored"]["accuracy"].get<double>(), 1) << "% | "
       << fmt(j["compare_anchored"]["confidence"].get<double>(), 3) << " |";
  md << "\n\n";
}

// validation.md's tables of the prior samples' predicted classes and of the reconstructions'
// accuracy per class.
void write_prior_and_recon_tables(std::ostream& md, const nlohmann::json& j, const ValidateOptions& opt,
                                  const std::vector<std::string>& names, int64_t K, int64_t nrec) {
  md << "## Prior samples (z ~ N(0, I), " << opt.prior << ")\n\n| predicted class | count |\n|---|---|\n";
  for (int64_t k = 0; k < K; ++k) {
    const std::string& name = names[static_cast<size_t>(k % 10)];
    md << "| " << k << (name == std::to_string(k) ? "" : " " + name) << " | "
       << j["prior"]["histogram"][k].get<int64_t>() << " |\n";
  }
  md << "\nMean top-1 confidence: " << fmt(j["prior"]["top1_confidence"].get<double>(), 3) << "\n\n";
  md << "## Reconstructions (" << nrec << " test images, z = mu)\n\nClassifier accuracy on reconstructions: "
     << fmt(100 * j["reconstructions"]["accuracy"].get<double>(), 2) << "% (on the originals: "
     << fmt(100 * j["reconstructions"]["originals_accuracy"].get<double>(), 2) << "%)\n\n"
     << "| class | name | test images | originals | reconstructions |\n|---|---|---|---|---|\n";
  for (int64_t k = 0; k < K; ++k) {
    const auto& r = j["reconstructions"];
    md << "| " << k << " | " << names[static_cast<size_t>(k % 10)] << " | " << r["per_class_n"][k].get<int64_t>() << " | "
       << fmt(100 * r["per_class_originals_accuracy"][k].get<double>(), 1) << "% | "
       << fmt(100 * r["per_class_accuracy"][k].get<double>(), 1) << "% |\n";
  }
  md << "\n";
}

// validation.md: the results in `j` as readable tables.
std::string validation_markdown(const nlohmann::json& j, const ValidateOptions& opt, const std::string& dataset,
                                const std::vector<std::string>& names, int64_t K, int64_t F, int64_t nref,
                                int64_t nrec) {
  const bool conditional = j.contains("conditional"), other = j.contains("compare_anchored");
  std::ostringstream md;
  md << "# Semantic validation\n\nVAE `" << opt.vae << "`, classifier `" << opt.classifier << "`, data set " << dataset
     << ", noise scale s = " << opt.noise << ", seed " << opt.seed << ".\n\n";
  write_class_table(md, j, opt, conditional, other);
  write_prior_and_recon_tables(md, j, opt, names, K, nrec);
  md << "## Classifier-feature Frechet distance (" << F << "-d penultimate features, reference: " << nref
     << " test images)\n\n| images | distance |\n|---|---|\n| anchored samples | " << fmt(j["anchored"]["frechet"].get<double>(), 3)
     << " |\n" << (other ? "| anchored samples of --compare-vae | " + fmt(j["compare_anchored"]["frechet"].get<double>(), 3) + " |\n" : "")
     << "| prior samples | " << fmt(j["prior"]["frechet"].get<double>(), 3) << " |\n| reconstructions | "
     << fmt(j["reconstructions"]["frechet"].get<double>(), 3) << " |\n";
  return md.str();
}

}  // namespace

nlohmann::json validate_generation(const ValidateOptions& opt, std::ostream& log) {
  check_validate_options(opt);
  Context ctx(opt.device);
  const ValidationModels models = load_validation_models(ctx, opt);
  ConvVAE& vae = *models.vae;
  ResNet18& clf = *models.clf;
  const VaeConfig& vc = vae.config();
  const ResNetConfig& rc = clf.config();
  const std::string dataset = vc.dataset.empty() ? "mnist" : vc.dataset;
  if (!rc.dataset.empty() && rc.dataset != dataset)
    log << "warning: the VAE was trained on " << dataset << " but the classifier on " << rc.dataset << "\n";
  log << "device: " << ctx.description() << "\n";

  // Class statistics for anchored samples (a CVAE is conditioned on the class instead).
  AnchorStats stats;
  if (vc.is_cvae())
    stats.classes = vc.classes;
  else
    stats = anchor_stats_for(ctx, vae, opt.vae, opt.data_dir, log, opt.progress, opt.components);
  AnchorStats other_stats;
  if (models.other) other_stats = anchor_stats_for(ctx, *models.other, opt.compare_vae, opt.data_dir, log, opt.progress, opt.components);
  const int64_t K = stats.classes, F = rc.feature_dim();
  CUVAE_REQUIRE(K == rc.classes, opt.vae << "'s data set has " << K << " classes, " << opt.classifier << " " << rc.classes);
  const std::vector<std::string> names = class_names(dataset);
  ensure_dir(opt.out);

  // Reference: the classifier's features of test images.
  const std::string dir = opt.data_dir.empty() ? default_data_dir(dataset) : opt.data_dir;
  const Dataset test = subset(load_dataset(dataset, dir, false), std::max(opt.reference, opt.recon));
  const int64_t nref = std::min(opt.reference, test.n), nrec = std::min(opt.recon, test.n);
  const DeviceDataset dd(test, ctx.device());
  Tensor ref_images = device_images(ctx, dd, nref);
  const ClassifierOutputs ref = run_classifier(ctx, clf, ref_images);

  nlohmann::json j;
  j["vae"] = opt.vae;
  j["classifier"] = opt.classifier;
  j["dataset"] = dataset;
  j["noise"] = opt.noise;
  j["components"] = opt.components;
  j["seed"] = opt.seed;
  j["device"] = ctx.description();

  // 1. Class-anchored samples (a CVAE: samples conditioned on the class), and with
  // --compare-vae the anchored samples of that VAE.
  const Judge judge{ctx, clf, ref, names, K, F};
  std::vector<float> grid;
  const int64_t grid_cols = std::min<int64_t>(10, opt.per_class);
  j["anchored"] = judge_class_samples(judge, vae, vc.is_cvae() ? nullptr : &stats,
                                      vc.is_cvae() ? "conditional samples" : "anchored samples", opt, &grid);
  if (vc.is_cvae()) j["conditional"] = true;
  if (models.other) {
    j["compare_vae"] = opt.compare_vae;
    j["compare_anchored"] = judge_class_samples(judge, *models.other, &other_stats, "anchored samples (--compare-vae)", opt, nullptr);
  }
  write_png_grid(opt.out + "/anchored.png", grid.data(), K * grid_cols, static_cast<int>(vc.channels),
                 static_cast<int>(vc.height), static_cast<int>(vc.width), static_cast<int>(grid_cols), 2, opt.scale);

  // 2. Prior samples z ~ N(0, I) and 3. reconstructions of test images (z = μ).
  add_sample_quality(j, sample_quality(ctx, vae, clf, test, opt.prior, opt.recon, opt.reference, opt.seed, &ref));
  j["frechet_reference"] = {{"images", nref}, {"features", F}, {"split", "test"}};

  const std::string md = validation_markdown(j, opt, dataset, names, K, F, nref, nrec);
  write_file_atomic(opt.out + "/validation.json", j.dump(2) + "\n");
  write_file_atomic(opt.out + "/validation.md", md);
  log << md << "\nwrote " << opt.out << "/validation.json, " << opt.out << "/validation.md, " << opt.out
      << "/anchored.png\n";
  return j;
}

}  // namespace cuvae
