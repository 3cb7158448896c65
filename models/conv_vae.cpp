#include "models/conv_vae.h"

#include "core/check.h"
#include "core/decimal.h"
#include "kernels/activation.h"
#include "kernels/conditional.h"
#include "kernels/free_bits.h"
#include "kernels/reparameterize.h"

#include <cmath>

namespace cuvae {

VaeArch parse_vae_arch(const std::string& s) {
  if (s == "conv") return VaeArch::Conv;
  if (s == "resnet") return VaeArch::Resnet;
  CUVAE_FAIL(option("arch") << " must be conv or resnet, got '" << s << "'");
}

const char* vae_arch_name(VaeArch arch) { return arch == VaeArch::Resnet ? "resnet" : "conv"; }

VaeKind parse_vae_kind(const std::string& s) {
  if (s == "vae") return VaeKind::Vae;
  if (s == "ae") return VaeKind::Ae;
  if (s == "cvae") return VaeKind::Cvae;
  CUVAE_FAIL(option("model") << " must be vae, ae or cvae, got '" << s << "'");
}

ReconLoss parse_recon_loss(const std::string& s) {
  if (s == "bce") return ReconLoss::Bce;
  if (s == "mse") return ReconLoss::Mse;
  CUVAE_FAIL(option("recon_loss") << " must be bce or mse, got '" << s << "'");
}

void VaeConfig::validate() const {
  CUVAE_REQUIRE(recon_loss == ReconLoss::Bce || is_ae(),
              "VAE config: recon_loss mse is for the plain autoencoder (" << option("model") << " ae) only");
  CUVAE_REQUIRE(channels == 1 || channels == 3, "VAE config: channels must be 1 or 3, got " << channels);
  CUVAE_REQUIRE(height >= 8 && width >= 8 && height % 4 == 0 && width % 4 == 0,
              "VAE config: height and width must be multiples of 4 and at least 8, got "
                  << height << "x" << width);
  CUVAE_REQUIRE(latent >= 1 && latent <= 4096, "VAE config: latent must be in [1, 4096], got " << latent);
  CUVAE_REQUIRE(beta >= 0.0f && beta < 1e6f, "VAE config: beta must be >= 0, got " << beta);
  CUVAE_REQUIRE(!is_cvae() || (classes >= 2 && classes <= 1000),
              "VAE config: a CVAE needs classes in [2, 1000], got " << classes);
}

nlohmann::json VaeConfig::to_json() const {
  nlohmann::json j = {{"model", model_name()}, {"channels", channels}, {"height", height},
                      {"width", width},        {"latent", latent},     {"beta", typed_decimal(beta)},
                      {"binarize", binarize},  {"dataset", dataset}, {"arch", vae_arch_name(arch)}};
  if (is_ae()) j["recon_loss"] = recon_loss == ReconLoss::Mse ? "mse" : "bce";
  if (is_cvae()) j["classes"] = classes;
  return j;
}

VaeConfig VaeConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) CUVAE_FAIL(source << ": model config is not a JSON object");
  if (!j.contains("model") || !j["model"].is_string())
    CUVAE_FAIL(source << ": model config has no \"model\" field");
  if (j["model"] != "ConvVAE" && j["model"] != "ConvAE" && j["model"] != "ConvCVAE")
    CUVAE_FAIL(source << ": this is a " << j["model"].get<std::string>()
                      << " checkpoint, expected a ConvVAE, ConvAE or ConvCVAE checkpoint");
  VaeConfig c;
  c.kind = j["model"] == "ConvAE" ? VaeKind::Ae : j["model"] == "ConvCVAE" ? VaeKind::Cvae : VaeKind::Vae;
  if (j.contains("recon_loss")) {
    if (!j["recon_loss"].is_string() || (j["recon_loss"] != "bce" && j["recon_loss"] != "mse"))
      CUVAE_FAIL(source << ": model config field \"recon_loss\" must be \"bce\" or \"mse\"");
    c.recon_loss = j["recon_loss"] == "mse" ? ReconLoss::Mse : ReconLoss::Bce;
  }
  if (j.contains("arch")) {  // checkpoints from before --arch existed hold the pinned conv network
    if (!j["arch"].is_string() || (j["arch"] != "conv" && j["arch"] != "resnet"))
      CUVAE_FAIL(source << ": model config field \"arch\" must be \"conv\" or \"resnet\", got " << j["arch"].dump());
    c.arch = j["arch"] == "resnet" ? VaeArch::Resnet : VaeArch::Conv;
  }
  auto get_int = [&](const char* k) -> int64_t {
    if (!j.contains(k) || !j[k].is_number_integer())
      CUVAE_FAIL(source << ": model config field \"" << k << "\" is missing or not an integer");
    return j[k].get<int64_t>();
  };
  c.channels = get_int("channels");
  c.height = get_int("height");
  c.width = get_int("width");
  c.latent = get_int("latent");
  if (c.is_cvae()) c.classes = get_int("classes");
  if (!j.contains("beta") || !j["beta"].is_number())
    CUVAE_FAIL(source << ": model config field \"beta\" is missing or not a number");
  c.beta = j["beta"].get<float>();
  if (j.contains("binarize") && j["binarize"].is_boolean()) c.binarize = j["binarize"].get<bool>();
  if (j.contains("dataset") && j["dataset"].is_string()) c.dataset = j["dataset"].get<std::string>();
  try {
    c.validate();
  } catch (const Error& e) {
    CUVAE_FAIL(source << ": " << e.what());
  }
  return c;
}

static VaeConfig validated(const VaeConfig& c) {
  c.validate();
  return c;
}

// enc.logvar for the VAE, registered between enc.mu and dec.fc1 (the order init_default
// draws in); nothing for the AE.
static std::optional<Linear> make_logvar(ParamStore& ps, const VaeConfig& cfg) {
  if (cfg.is_ae()) return std::nullopt;
  return std::optional<Linear>(std::in_place, ps, "enc.logvar", 256, cfg.latent);
}

ConvVAE::ConvVAE(const VaeConfig& cfg, Device device)
    : cfg_(validated(cfg)),
      device_(device),
      fh_(cfg.height / 4),
      fw_(cfg.width / 4),
      encoder_(cfg.arch == VaeArch::Resnet ? make_resnet_encoder(ps_, cfg.channels)
                                           : make_conv_encoder(ps_, cfg.channels)),
      flat_(cfg.feature_channels() * fh_ * fw_),
      enc_fc_(ps_, "enc.fc", flat_ + cfg.label_width(), 256, Activation::ReLU),
      enc_mu_(ps_, "enc.mu", 256, cfg.latent),
      enc_logvar_(make_logvar(ps_, cfg)),
      dec_fc1_(ps_, "dec.fc1", cfg.latent + cfg.label_width(), 256, Activation::ReLU),
      dec_fc2_(ps_, "dec.fc2", 256, flat_, Activation::ReLU),
      decoder_(cfg.arch == VaeArch::Resnet ? make_resnet_decoder(ps_, cfg.channels)
                                           : make_conv_decoder(ps_, cfg.channels)) {
  ps_.finalize(device);
  loss_ = Tensor({1}, device);
  kl_dim_ = Tensor({cfg_.latent}, device);
  kl_weight_ = cfg_.beta;
}

void ConvVAE::set_kl_weight(float beta) {
  CUVAE_CHECK(std::isfinite(beta) && beta >= 0.0f, "ConvVAE: the KL weight must be finite and >= 0, got " << beta);
  kl_weight_ = beta;
}

void ConvVAE::set_free_bits(float lambda) {
  CUVAE_REQUIRE(std::isfinite(lambda) && lambda >= 0.0f, option("free_bits") << " must be a finite number >= 0, got " << lambda);
  free_bits_ = lambda;
}

void ConvVAE::ensure(int64_t n) {
  CUVAE_CHECK(n > 0, "ConvVAE: empty batch");
  if (n > cap_) {
    const int64_t D = cfg_.latent;
    eps_ = Tensor({n, D}, device_);
    z_ = Tensor({n, D}, device_);
    dmu_ = Tensor({n, D}, device_);
    dlogvar_ = Tensor({n, D}, device_);
    recon_ = Tensor({n}, device_);
    kl_ = Tensor({n}, device_);
    dlogits_ = Tensor({n, cfg_.channels, cfg_.height, cfg_.width}, device_);
    if (cfg_.is_ae()) zero_logvar_ = Tensor({n, D}, device_);
    if (cfg_.is_cvae()) {
      const int64_t K = cfg_.classes;
      enc_in_ = Tensor({n, flat_ + K}, device_);
      dec_in_ = Tensor({n, D + K}, device_);
      dflat_ = Tensor({n, flat_}, device_);
      dz_ = Tensor({n, D}, device_);
    }
    cap_ = n;
  }
  if (n != n_) {
    n_ = n;
    eps_view_ = eps_.rows(0, n);
    z_view_ = z_.rows(0, n);
    dmu_view_ = dmu_.rows(0, n);
    dlogvar_view_ = dlogvar_.rows(0, n);
    recon_view_ = recon_.rows(0, n);
    kl_view_ = kl_.rows(0, n);
    dlogits_view_ = dlogits_.rows(0, n);
  }
}

void ConvVAE::check_labels(const Context& ctx, const IntBuffer* labels, int64_t n, const char* what) const {
  if (!cfg_.is_cvae()) return;
  CUVAE_CHECK(labels != nullptr, "ConvVAE::" << what << ": a CVAE needs the class label of every image it encodes or decodes");
  CUVAE_CHECK(labels->device() == ctx.device(), "ConvVAE::" << what << ": labels are on " << device_name(labels->device())
                                                             << " but the model runs on " << device_name(ctx.device()));
  CUVAE_CHECK(labels->size() >= n, "ConvVAE::" << what << ": labels hold " << labels->size() << " values for a batch of " << n);
}

Tensor ConvVAE::with_label(Context& ctx, const Tensor& t, const IntBuffer* labels, Tensor& buffer) {
  if (!cfg_.is_cvae()) return Tensor::view(const_cast<float*>(t.data()), t.shape(), ctx.device());  // read only
  Tensor cat = buffer.rows(0, n_);
  concat_onehot(ctx, t, *labels, cfg_.classes, cat);
  return cat;
}

void ConvVAE::encode(Context& ctx, const Tensor& x, const IntBuffer* labels) {
  CUVAE_CHECK(x.ndim() == 4 && x.dim(1) == cfg_.channels && x.dim(2) == cfg_.height &&
                  x.dim(3) == cfg_.width,
              "ConvVAE: input " << x.shape_str() << ", expected [N, " << cfg_.channels << ", "
                                << cfg_.height << ", " << cfg_.width << "]");
  check_labels(ctx, labels, x.dim(0), "encode");
  ensure(x.dim(0));
  Tensor& h2 = encoder_->forward(ctx, x);
  Tensor flat = Tensor::view(h2.data(), {n_, flat_}, ctx.device());
  Tensor& h3 = enc_fc_.forward(ctx, with_label(ctx, flat, labels, enc_in_));
  mu_view_ = Tensor::view(enc_mu_.forward(ctx, h3).data(), {n_, cfg_.latent}, ctx.device());
  if (enc_logvar_)
    logvar_view_ = Tensor::view(enc_logvar_->forward(ctx, h3).data(), {n_, cfg_.latent}, ctx.device());
  else
    logvar_view_ = zero_logvar_.rows(0, n_);
}

Tensor& ConvVAE::decode(Context& ctx, const Tensor& z, const IntBuffer* labels) {
  CUVAE_CHECK(z.ndim() == 2 && z.dim(1) == cfg_.latent,
              "ConvVAE::decode: z " << z.shape_str() << ", expected [N, " << cfg_.latent << "]");
  check_labels(ctx, labels, z.dim(0), "decode");
  ensure(z.dim(0));
  Tensor& g1 = dec_fc1_.forward(ctx, with_label(ctx, z, labels, dec_in_));
  Tensor& g2 = dec_fc2_.forward(ctx, g1);
  Tensor map = Tensor::view(g2.data(), {n_, cfg_.feature_channels(), fh_, fw_}, ctx.device());
  logits_ = &decoder_->forward(ctx, map);
  return *logits_;
}

Tensor& ConvVAE::forward(Context& ctx, const Tensor& x, bool sample, uint64_t seed, uint64_t offset,
                         const IntBuffer* labels) {
  encode(ctx, x, labels);
  sampled_ = sample;
  if (sample && !cfg_.is_ae()) {
    reparameterize_forward(ctx, mu_view_, logvar_view_, eps_view_, z_view_, seed, offset, step_state_);
  } else {
    z_view_.copy_from(mu_view_, ctx.stream());
  }
  return decode(ctx, z_view_, labels);
}

void ConvVAE::loss(Context& ctx, const Tensor& x, bool grads, uint64_t seed, uint64_t offset) {
  CUVAE_CHECK(logits_ != nullptr, "ConvVAE::loss before forward");
  ElboConfig ec;
  ec.beta = cfg_.is_ae() ? 0.0f : kl_weight_;
  ec.mse = cfg_.is_ae() && grads && cfg_.recon_loss == ReconLoss::Mse;
  ec.binarize = cfg_.binarize && grads;
  ec.seed = seed;
  ec.offset = offset;
  if (grads) ec.state = step_state_;  // this step's kl_weight (0 in an AE's table) and offset
  elbo(ctx, *logits_, x, mu_view_, logvar_view_, &recon_view_, &kl_view_, loss_,
       grads ? &dlogits_view_ : nullptr, grads ? &dmu_view_ : nullptr,
       grads ? &dlogvar_view_ : nullptr, ec);
  if (cfg_.is_ae()) kl_view_.zero(ctx.stream());  // the AE has no KL term (beta = 0 above)
  if (grads && free_bits_ > 0.0f && !cfg_.is_ae())
    free_bits(ctx, mu_view_, logvar_view_, free_bits_, kl_weight_, dmu_view_, dlogvar_view_, kl_dim_, loss_,
              step_state_);
}

StepFlops ConvVAE::step_flops() const {
  StepFlops f;
  encoder_->add_flops(f);
  f.add(enc_fc_.flops(), true);
  f.add(enc_mu_.flops(), true);
  if (enc_logvar_) f.add(enc_logvar_->flops(), true);
  f.add(dec_fc1_.flops(), true);
  f.add(dec_fc2_.flops(), true);
  decoder_->add_flops(f);
  return f;
}

void ConvVAE::backward(Context& ctx) {
  CUVAE_CHECK(sampled_, "ConvVAE::backward needs a forward with sample = true");
  Tensor& d2 = decoder_->backward(ctx, dlogits_view_);
  Tensor d2flat = Tensor::view(d2.data(), {n_, flat_}, ctx.device());
  Tensor& d1 = dec_fc2_.backward(ctx, d2flat, true);
  Tensor* dzp = &dec_fc1_.backward(ctx, d1, true);
  Tensor dz_cut;
  if (cfg_.is_cvae()) {  // the label columns of [z | onehot] pass nothing on
    dz_cut = dz_.rows(0, n_);
    take_columns(ctx, *dzp, cfg_.classes, dz_cut);
    dzp = &dz_cut;
  }
  Tensor& dz = *dzp;
  Tensor* dhp = nullptr;
  if (cfg_.is_ae()) {
    dhp = &enc_mu_.backward(ctx, dz, true);  // z = μ: the decoder's gradient is all of dμ
  } else {
    // dμ, dlogσ² already hold the KL gradient from the ELBO kernel; add the decoder's share.
    reparameterize_backward(ctx, dz, eps_view_, logvar_view_, dmu_view_, dlogvar_view_, true);
    dhp = &enc_mu_.backward(ctx, dmu_view_, true);
    enc_logvar_->backward(ctx, dlogvar_view_, true, dhp);
  }
  Tensor& dh = *dhp;
  Tensor* dflatp = &enc_fc_.backward(ctx, dh, true);
  Tensor dflat_cut;
  if (cfg_.is_cvae()) {
    dflat_cut = dflat_.rows(0, n_);
    take_columns(ctx, *dflatp, cfg_.classes, dflat_cut);
    dflatp = &dflat_cut;
  }
  Tensor dmap = Tensor::view(dflatp->data(), {n_, cfg_.feature_channels(), fh_, fw_}, ctx.device());
  encoder_->backward(ctx, dmap);
}

Tensor ConvVAE::decode_images(Context& ctx, const std::vector<float>& z, int64_t n,
                              const std::vector<int32_t>* labels) {
  const int64_t D = cfg_.latent;
  CUVAE_CHECK(static_cast<int64_t>(z.size()) == n * D, "decode_images: " << z.size() << " values for " << n << "x" << D);
  Tensor zt = Tensor::from_vector(z, {n, D}, ctx.device());
  IntBuffer y;
  if (labels != nullptr) {
    CUVAE_CHECK(static_cast<int64_t>(labels->size()) == n, "decode_images: " << labels->size() << " labels for " << n << " codes");
    for (int32_t v : *labels)
      CUVAE_CHECK(v >= 0 && v < cfg_.classes, "decode_images: label " << v << " outside [0, " << cfg_.classes << ")");
    y = IntBuffer(n, ctx.device());
    y.upload(*labels);
  } else if (cfg_.is_cvae()) {
    CUVAE_FAIL("a conditional VAE (CVAE) needs a class for every code it decodes");
  }
  Tensor& logits = decode(ctx, zt, labels != nullptr ? &y : nullptr);
  Tensor img(logits.shape(), ctx.device());
  activation_forward(ctx, Activation::Sigmoid, logits, img);
  return img;
}

}  // namespace cuvae
