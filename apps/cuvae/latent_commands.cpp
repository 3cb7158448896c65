// The latent-space subcommands: interpolate, arithmetic, traverse, embed. Each parses flags,
// calls one job of jobs/analysis/ and writes its files.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "core/check.h"
#include "core/context.h"
#include "io/dataset.h"
#include "io/gif.h"
#include "io/plot.h"
#include "jobs/analysis/embed_job.h"
#include "jobs/analysis/latent.h"
#include "jobs/analysis/latent_io.h"
#include "jobs/analysis/plots.h"
#include "jobs/analysis/report.h"
#include "jobs/anchor.h"
#include "models/checkpoint.h"

namespace cuvae::app {

namespace {

/// Flags every latent-space command shares.
struct LatentFlags {
  std::string vae, dataset, data, device = "auto", out;
  uint64_t seed = 0;
  int scale = 2;
  bool no_progress = false;

  void add(CLI::App* c, const std::string& default_out) {
    static const DatasetValidator dataset_ok;
    static const DeviceValidator device_ok;
    out = default_out;
    c->add_option("--vae", vae, "VAE model.safetensors written by train-vae")->required();
    c->add_option("--dataset", dataset, "Data set: " + dataset_list() + " (default: the one the VAE was trained on)")
        ->check(dataset_ok);
    c->add_option("--data", data, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--device", device, "auto (GPU when one works, else CPU), cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_option("--seed", seed, "Seed (t-SNE initialisation noise; kept for reproducibility elsewhere)")->capture_default_str();
    c->add_option("--out", out, "Output folder (created; files in it are replaced)")->capture_default_str();
    c->add_option("--scale", scale, "Enlarge PNG images by this factor for viewing")->check(CLI::Range(1, 16))->capture_default_str();
    c->add_flag("--no-progress", no_progress, "No progress bars");
  }
  std::string dataset_for(const ConvVAE& v) const {
    if (!dataset.empty()) return dataset;
    return v.config().dataset.empty() ? "mnist" : v.config().dataset;
  }
  Dataset load_split(const ConvVAE& v, bool train) const {
    const std::string ds = dataset_for(v);
    return load_dataset(ds, data.empty() ? default_data_dir(ds) : data, train);
  }
};

void print_written(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) std::cout << "wrote " << p << "\n";
}

}  // namespace

void add_latent_commands(CLI::App& app, std::vector<Command>& commands) {
  // ---- interpolate ------------------------------------------------------------------
  {
    struct Opt : LatentFlags {
      std::vector<std::string> pairs, classes;
      int steps = 11;
      std::string mode = "lerp";
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "interpolate",
        "Interpolate between test images in latent space: one row per pair, the two images at the ends and the "
        "decoded path between their mu in the middle; writes interpolation.png and interpolation.json");
    o->add(c, "runs/interpolate");
    auto* p = c->add_option("--pairs", o->pairs, "Test-image index pairs I:J, one row each (e.g. 0:1 3:42)")
                  ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    auto* k = c->add_option("--classes", o->classes, "Class pairs A:B: the first test image of each class (e.g. 1:7)")
                  ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    p->excludes(k);
    c->add_option("--steps", o->steps, "Points on each path, t = 0 … 1 (at least 2)")->capture_default_str();
    c->add_option("--mode", o->mode, "lerp (straight line) or slerp (great circle, White 2016)")->capture_default_str();
    commands.push_back({c, [=] {
                          InterpolateOptions io;
                          io.steps = o->steps;
                          io.mode = parse_interp_mode(o->mode);
                          if (o->pairs.empty() && o->classes.empty())
                            CUVAE_FAIL("interpolate: give --pairs I:J or --classes A:B");
                          Context ctx(parse_device(o->device));
                          auto vae = load_vae(o->vae, ctx.device());
                          Dataset test = o->load_split(*vae, false);
                          for (const std::string& s : o->pairs) io.pairs.push_back(parse_pair(s, "--pairs"));
                          std::vector<std::pair<int, int>> cls;
                          for (const std::string& s : o->classes) {
                            auto [a, b] = parse_pair(s, "--classes");
                            if (a > 1000000 || b > 1000000) CUVAE_FAIL("--classes " << s << " is out of range");
                            cls.emplace_back(static_cast<int>(a), static_cast<int>(b));
                          }
                          if (!cls.empty()) io.pairs = pairs_from_classes(test, cls);
                          InterpolateResult r = interpolate(ctx, *vae, test, io);
                          print_written(write_interpolation(o->out, r, test, o->scale));
                        }});
  }

  // ---- arithmetic -------------------------------------------------------------------
  {
    struct Opt : LatentFlags {
      std::vector<int64_t> index;
      int from = -1, to = -1;
      double alpha = 1.0;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "arithmetic",
        "Latent arithmetic: z = mu(x_I) + alpha*(m_B - m_A), with m_c the mean of mu over class c of the training set "
        "(computed once and kept beside the checkpoint); writes arithmetic.png (per index: image, reconstruction, "
        "alpha x 0.25, 0.5, 0.75, 1) and arithmetic.json");
    o->add(c, "runs/arithmetic");
    c->add_option("--index", o->index, "Test-image indices to move")->required()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_option("--from-class", o->from, "Class A the direction starts from")->required();
    c->add_option("--to-class", o->to, "Class B the direction points to")->required();
    c->add_option("--alpha", o->alpha, "Step along m_B - m_A (the grid shows 1/4, 1/2, 3/4 and all of it)")->capture_default_str();
    commands.push_back({c, [=] {
                          ArithmeticOptions ao;
                          ao.indices = o->index;
                          ao.from_class = o->from;
                          ao.to_class = o->to;
                          ao.alpha = o->alpha;
                          Context ctx(parse_device(o->device));
                          auto vae = load_vae(o->vae, ctx.device());
                          Dataset test = o->load_split(*vae, false);
                          ao.validate(test.num_classes, test.n);  // before the class statistics are computed
                          AnchorStats s = anchor_stats_for(ctx, *vae, o->vae, o->data, std::cout, !o->no_progress);
                          ArithmeticResult r = latent_arithmetic(ctx, *vae, test, s, ao);
                          print_written(write_arithmetic(o->out, r, ao, test, o->scale));
                        }});
  }

  // ---- traverse ---------------------------------------------------------------------
  {
    struct Opt : LatentFlags {
      std::string dims = "top-kl:10", base = "zero";
      double range = 3.0;
      int steps = 11;
      bool gif = false;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "traverse",
        "Latent traversal: each chosen dimension swept from -range to +range with the others fixed at the base code; "
        "writes traversal.png (rows: dimensions), traversal.csv (per dimension: mean KL over the test set in nats, "
        "activity and whether it is an active unit) and, with --gif, one animated GIF per dimension");
    o->add(c, "runs/traverse");
    c->add_option("--dims", o->dims, "top-kl:K (the K dimensions with the largest mean KL) or a list such as 3,7,12")
        ->capture_default_str();
    c->add_option("--range", o->range, "Each dimension goes from -range to +range")->capture_default_str();
    c->add_option("--steps", o->steps, "Values per dimension (at least 2)")->capture_default_str();
    c->add_option("--base", o->base, "The code the other dimensions keep: zero, index:I (test image I's mu) or class:K "
                                     "(class K's mean mu over the training set)")->capture_default_str();
    c->add_flag("--gif", o->gif, "Also write traversal_dim<d>.gif, an animated sweep per dimension (needs giflib)");
    commands.push_back({c, [=] {
                          if (o->gif && !gif_available())
                            CUVAE_FAIL("--gif is unavailable: this build of cuvae has no giflib (install libgif-dev and rebuild)");
                          const TraverseBase base = parse_base(o->base);
                          Context ctx(parse_device(o->device));
                          auto vae = load_vae(o->vae, ctx.device());
                          TraverseOptions to;
                          to.dims = parse_dims(o->dims, vae->config().latent);
                          to.range = o->range;
                          to.steps = o->steps;
                          to.validate(vae->config().latent);  // before the test set is encoded
                          Dataset test = o->load_split(*vae, false);
                          std::unique_ptr<AnchorStats> stats;
                          if (base.kind == TraverseBase::Class) {
                            if (base.arg >= test.num_classes)
                              CUVAE_FAIL("--base class:" << base.arg << " is out of range: expected a class in 0.." << test.num_classes - 1);
                            stats = std::make_unique<AnchorStats>(anchor_stats_for(ctx, *vae, o->vae, o->data, std::cout, !o->no_progress));
                          }
                          const std::vector<float> z0 = traverse_base(ctx, *vae, test, stats.get(), base);
                          LatentDimStats ds = latent_dim_stats(encode_dataset(ctx, *vae, test, 0, 500, !o->no_progress));
                          TraverseResult r = traverse(ctx, *vae, ds, z0, to);
                          print_written(write_traversal(o->out, r, ds, o->scale, o->gif));
                          std::cout << "active units: " << ds.active_units << " of " << vae->config().latent
                                    << " (Cov_x(E_q[z_d]) > 0.01 over " << test.n << " test images)\n";
                        }});
  }

  // ---- plot -------------------------------------------------------------------------
  {
    auto run = std::make_shared<std::string>();
    CLI::App* c = app.add_subcommand(
        "plot", "Redraw a run folder's pictures: curves.png from metrics.csv (VAE or classifier) and, for a classifier, "
                "confusion.png from confusion.csv");
    c->add_option("--run", *run, "Run folder written by train-vae or train-classifier")->required();
    commands.push_back({c, [run] {
                          if (!plot_available())
                            CUVAE_FAIL("plot is unavailable: this build of cuvae has no PLplot (install libplplot-dev and "
                                       "plplot-driver-cairo and rebuild)");
                          print_written(plot_run(*run));
                        }});
  }

  // ---- report -----------------------------------------------------------------------
  {
    auto o = std::make_shared<ReportOptions>();
    auto out = std::make_shared<std::string>("runs/report.html");
    CLI::App* c = app.add_subcommand(
        "report", "One self-contained HTML page (images inlined, no network) of run and analysis folders: configuration, "
                  "metrics, curves, samples, reconstructions, traversals, interpolations, maps, validation, compare and sweep tables");
    c->add_option("--run", o->runs, "Folders to include (train-vae, train-classifier, validate, interpolate, traverse, embed, compare, …)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_option("--sweep", o->sweeps, "Folders written by cuvae sweep (their table and plots)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_option("--title", o->title, "Page title")->capture_default_str();
    c->add_option("--out", *out, "The .html file to write")->capture_default_str();
    commands.push_back({c, [o, out] {
                          write_report(*o, *out);
                          std::cout << "wrote " << *out << "\n";
                        }});
  }

  // ---- embed ------------------------------------------------------------------------
  {
    struct Opt : LatentFlags {
      std::string split = "test", method = "tsne";
      int64_t n = 10000;
      double perplexity = 30, theta = 0.5;
      int iters = 1000;
      bool exact = false, approx = false;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "embed",
        "2-D map of the latent codes (PCA or t-SNE of mu) with trustworthiness and 5-NN accuracy; writes "
        "latents.safetensors, embedding.csv, embedding.png and embed.json");
    o->add(c, "runs/embed");
    c->add_option("--split", o->split, "test, train or all (the training images, then the test images)")
        ->check(CLI::IsMember({"test", "train", "all"}))->capture_default_str();
    c->add_option("--n", o->n, "Map the first N images of the split (with --split all: 70000 for MNIST)")->capture_default_str();
    c->add_option("--method", o->method, "pca or tsne")->capture_default_str();
    c->add_option("--perplexity", o->perplexity, "t-SNE perplexity")->capture_default_str();
    c->add_option("--iters", o->iters, "t-SNE iterations (n_iter)")->capture_default_str();
    c->add_option("--theta", o->theta, "Barnes-Hut accuracy (0.5 as scikit-learn)")->capture_default_str();
    auto* ex = c->add_flag("--exact", o->exact, "Exact O(N^2) t-SNE gradient (CUDA kernel on a GPU, OpenMP on the CPU)");
    auto* ap = c->add_flag("--approx", o->approx, "Barnes-Hut t-SNE (theta = --theta); default: chosen by N and device");
    ex->excludes(ap);
    commands.push_back({c, [=] {
                          const auto t0 = std::chrono::steady_clock::now();
                          EmbedOptions eo;
                          eo.method = parse_embed_method(o->method);
                          if (o->n < 4) CUVAE_FAIL("--n must be at least 4, got " << o->n);
                          eo.n = o->n;
                          eo.progress = !o->no_progress;
                          eo.tsne.perplexity = o->perplexity;
                          eo.tsne.iters = o->iters;
                          eo.tsne.theta = o->theta;
                          eo.tsne.seed = o->seed;
                          eo.tsne.progress = !o->no_progress;
                          eo.tsne.method = o->exact ? TsneMethod::Exact : (o->approx ? TsneMethod::BarnesHut : TsneMethod::Auto);
                          Context ctx(parse_device(o->device));
                          auto vae = load_vae(o->vae, ctx.device());
                          const std::string ds = o->dataset_for(*vae);
                          Dataset data = o->load_split(*vae, o->split != "test");
                          if (o->split == "all") {  // train then test: indices 0..59999 train, 60000.. test
                            Dataset test = o->load_split(*vae, false);
                            data.images.insert(data.images.end(), test.images.begin(), test.images.end());
                            data.labels.insert(data.labels.end(), test.labels.begin(), test.labels.end());
                            data.n += test.n;
                            data.name += "+test";
                          }
                          if (eo.n > data.n)
                            CUVAE_FAIL("--n " << eo.n << " is larger than the " << ds << " " << o->split << " split (" << data.n << " images)");
                          EmbedResult r = embed_latents(ctx, *vae, data, eo);
                          nlohmann::json meta = {{"dataset", ds}, {"split", o->split}, {"vae", o->vae},
                                                 {"device", ctx.description()}, {"seed", o->seed}};
                          if (eo.method == "tsne") {
                            meta["perplexity"] = o->perplexity;
                            meta["iters"] = o->iters;
                          }
                          meta["seconds_total"] =
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                          if (!plot_available())
                            std::cout << "note: embedding.png skipped: this build of cuvae has no PLplot\n";
                          print_written(write_embedding(o->out, r, class_names(ds), meta));
                          char line[256];
                          std::snprintf(line, sizeof line,
                                        "%s (%s) of %lld %s %s images: %.1f s; trustworthiness %.4f, 5-NN accuracy %.4f in "
                                        "the map, %.4f in mu space",
                                        r.method.c_str(), r.algorithm.c_str(), static_cast<long long>(r.codes.n), ds.c_str(),
                                        o->split.c_str(), r.seconds, r.trustworthiness, r.knn_accuracy, r.knn_accuracy_latent);
                          std::cout << line << "\n";
                        }});
  }
}

}  // namespace cuvae::app
