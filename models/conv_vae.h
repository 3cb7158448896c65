// ConvVAE: the convolutional variational autoencoder (Kingma & Welling, "Auto-Encoding
// Variational Bayes", ICLR 2014) with β-VAE weighting (Higgins et al., ICLR 2017), with
// the layer names and layouts of the equivalent PyTorch module.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/buffer.h"
#include "core/context.h"
#include "kernels/elbo.h"
#include "kernels/step_state.h"
#include "layers/conv2d.h"
#include "layers/flops.h"
#include "layers/linear.h"
#include "layers/param.h"
#include "models/vae_bodies.h"

namespace cuvae {

/// Which model a ConvVAE object is: the VAE, the plain autoencoder (no enc.logvar, no
/// sampling, no KL; z = enc.mu), or the conditional VAE (Sohn et al. 2015: a one-hot label
/// appended to the encoder's flattened features and to z).
enum class VaeKind { Vae, Ae, Cvae };
/// The reconstruction term trained on: Bernoulli cross-entropy on the logits (nats per image),
/// or the sum over pixels of squared errors of sigmoid(logits) against x in [0, 1] (AE only).
enum class ReconLoss { Bce, Mse };

/// The convolutional network around the fully connected layers: the pinned two-layer encoder and
/// decoder (Conv), or the deeper residual ones (Resnet; models/vae_bodies.h).
enum class VaeArch { Conv, Resnet };

/// "conv" or "resnet"; throws cuvae::Error naming --arch otherwise.
VaeArch parse_vae_arch(const std::string& s);
/// "conv" or "resnet": the "arch" field of the checkpoint config and the --arch value.
const char* vae_arch_name(VaeArch arch);
/// "vae", "ae" or "cvae"; throws cuvae::Error naming --model otherwise.
VaeKind parse_vae_kind(const std::string& s);
/// "bce" or "mse"; throws cuvae::Error naming --recon-loss otherwise.
ReconLoss parse_recon_loss(const std::string& s);

/// Shape and loss options of a ConvVAE. H and W must be divisible by 4 (28 → 7×7 and
/// 32 → 8×8 feature maps after the encoder).
struct VaeConfig {
  int64_t channels = 1;  ///< C: 1 for MNIST/FashionMNIST, 3 for CIFAR-10
  int64_t height = 28;
  int64_t width = 28;
  int64_t latent = 32;      ///< D, latent dimensions
  float beta = 1.0f;        ///< weight of the KL term; 0 trains a plain autoencoder objective
  bool binarize = false;    ///< dynamic binarization of training targets
  std::string dataset;      ///< the data set it was trained on (informational)
  VaeKind kind = VaeKind::Vae;          ///< VAE, plain AE (beta ignored, no KL) or CVAE
  ReconLoss recon_loss = ReconLoss::Bce;  ///< training reconstruction term (Mse: AE only)
  int64_t classes = 10;                 ///< K, the one-hot width of a CVAE (unused otherwise)
  VaeArch arch = VaeArch::Conv;         ///< the pinned convolutional network or the residual one

  /// True for the plain autoencoder.
  bool is_ae() const { return kind == VaeKind::Ae; }
  /// True for the conditional VAE.
  bool is_cvae() const { return kind == VaeKind::Cvae; }
  /// Label columns appended before enc.fc and dec.fc1: K for a CVAE, else 0.
  int64_t label_width() const { return is_cvae() ? classes : 0; }
  /// "ConvVAE", "ConvAE" or "ConvCVAE": the "model" field of the checkpoint config.
  const char* model_name() const { return is_ae() ? "ConvAE" : is_cvae() ? "ConvCVAE" : "ConvVAE"; }

  /// F, the channels of the encoder's last feature maps and of dec.fc2's maps: 64 (conv), 128 (resnet).
  int64_t feature_channels() const { return arch == VaeArch::Resnet ? 128 : 64; }
  /// Pixels per image, C·H·W.
  int64_t pixels() const { return channels * height * width; }
  /// Throws cuvae::Error naming the field when a value is out of range.
  void validate() const;
  /// The config as the JSON object stored in checkpoints' metadata.
  nlohmann::json to_json() const;
  /// Reads the fields written by to_json(); throws cuvae::Error naming `source` and the
  /// field when one is missing or has the wrong type.
  static VaeConfig from_json(const nlohmann::json& j, const std::string& source);
};

/// The pinned default VAE (VaeArch::Conv):
///   enc.conv1 Conv2d(C,32,4,2,1)+ReLU → enc.conv2 Conv2d(32,64,4,2,1)+ReLU → flatten →
///   enc.fc Linear(64·h/4·w/4, 256)+ReLU → enc.mu, enc.logvar Linear(256, D);
///   z = μ + exp(½·logσ²)·ε;
///   dec.fc1 Linear(D,256)+ReLU → dec.fc2 Linear(256, 64·h/4·w/4)+ReLU → view →
///   dec.deconv1 ConvTranspose2d(64,32,4,2,1)+ReLU → dec.deconv2 ConvTranspose2d(32,C,4,2,1)
///   → logits [N, C, H, W].
/// With config().arch == Resnet the convolutions are make_resnet_encoder's and make_resnet_decoder's
/// (models/vae_bodies.h: one unnormalised residual block at each of H, H/2 and H/4, 32/64/128
/// channels) and the flattened features are 128·h/4·w/4; the fully connected layers, the latent and
/// everything below are the same.
/// With config().kind == Cvae it is the conditional VAE: enc.fc is Linear(64·h/4·w/4 + K, 256) over
/// [flattened features | onehot(y)] (label in weight columns 3136…3136+K−1 for 28×28) and dec.fc1
/// Linear(D + K, 256) over [z | onehot(y)]; encode/decode/forward then need the labels (n int32 in
/// [0, K) in an IntBuffer on the model's device). With config().kind == Ae it is the plain autoencoder: the same layers without enc.logvar,
/// z = μ always (no sampling), loss() = recon only (BCE, or MSE with ReconLoss::Mse) and
/// logvar() reads as zeros.
/// All parameters share one flat buffer (params()). Works on the CPU or a GPU, chosen by
/// the device given at construction; every call must use a context on that device.
class ConvVAE {
 public:
  ConvVAE(const VaeConfig& cfg, Device device);
  ConvVAE(const ConvVAE&) = delete;
  ConvVAE& operator=(const ConvVAE&) = delete;

  /// The configuration it was built with.
  const VaeConfig& config() const { return cfg_; }
  /// All parameters and gradients, in one flat buffer each.
  ParamStore& params() { return ps_; }
  /// Where its parameters and buffers live.
  Device device() const { return device_; }

  /// PyTorch-default initialisation from `seed` (see ParamStore::init_default).
  void init(uint64_t seed) { ps_.init_default(seed); }

  /// Encoder: x [N, C, H, W] in [0,1] → mu(), logvar() [N, D]. `labels` (a typed buffer of at
  /// least N int32 class indices on the model's device) is required for a CVAE and ignored
  /// otherwise; throws cuvae::Error when it is missing, too short or on another device.
  void encode(Context& ctx, const Tensor& x, const IntBuffer* labels = nullptr);
  /// Decoder: z [N, D] → logits() [N, C, H, W] (pre-sigmoid); `labels` as for encode.
  Tensor& decode(Context& ctx, const Tensor& z, const IntBuffer* labels = nullptr);
  /// Images [n, C, H, W] in [0, 1] on the context's device, decoded from latent vectors z [n, D]
  /// (host floats): sigmoid(decode(z)). A CVAE needs `labels` (n classes in [0, K)); the others
  /// ignore them. Throws cuvae::Error on a size mismatch, a label out of range or a CVAE without
  /// labels.
  Tensor decode_images(Context& ctx, const std::vector<float>& z, int64_t n,
                       const std::vector<int32_t>* labels = nullptr);
  /// Full forward: encode, then z = reparameterize(μ, logσ², ε) with ε = Philox(seed, offset)
  /// when `sample`, else z = μ, then decode. Returns logits().
  Tensor& forward(Context& ctx, const Tensor& x, bool sample, uint64_t seed, uint64_t offset,
                  const IntBuffer* labels = nullptr);

  /// The KL weight loss() uses: config().beta unless set (KL warm-up and cyclical schedules set
  /// it every step: Bowman et al. 2016, Fu et al. 2019). Throws cuvae::Error unless finite, >= 0.
  void set_kl_weight(float beta);
  float kl_weight() const { return kl_weight_; }
  /// Free bits (Kingma et al. 2016, per dimension): in training losses (grads = true) the KL of
  /// each latent dimension, averaged over the batch, counts as at least `lambda` nats, and its
  /// gradient is 0 below that floor (0 = off). Throws cuvae::Error unless finite and >= 0.
  void set_free_bits(float lambda);
  /// A training loop's step state (kernels/step_state.h; on the model's device), or null. While
  /// set, a sampling forward() draws ε at Philox offset `offset` + philox_offset and a training
  /// loss() (grads = true) binarizes at `offset` + philox_offset and weights the KL by the state's
  /// kl_weight (which an AE's schedule table must hold at 0), all read when the kernels run, so
  /// that a captured step replays as the next step.
  void set_step_state(const StepState* state) { step_state_ = state; }

  /// The fused ELBO of the last forward against targets x: fills recon()/kl() [N] (nats
  /// per image) and loss() [1] (batch mean of recon + β·KL); with `grads` also the
  /// gradients of loss() w.r.t. logits, μ and logσ². For the AE, loss() = mean recon, kl()
  /// is zero, and the recon term is BCE unless `grads` and the config asks for MSE (so
  /// evaluation always reports BCE in nats per image).
  void loss(Context& ctx, const Tensor& x, bool grads, uint64_t seed, uint64_t offset);
  /// Backward of the last forward(sample = true) + loss(grads = true): fills the
  /// parameter gradients in params().flat_grads().
  void backward(Context& ctx);

  /// FLOPs of one training step (forward, fused ELBO, backward) at the batch of the last
  /// forward: the convolutions, the fully connected layers and the transposed convolutions,
  /// forward and backward (StepFlops; the first convolution computes no data gradient). All
  /// zero before the first forward. At 28×28 the pinned VAE costs 10.1 MFLOP per image forward
  /// (30.1 per step), the residual one (--arch resnet) 232 MFLOP (696 per step).
  StepFlops step_flops() const;

  /// Views of the last forward's tensors: mu, logvar, z [N, D]; logits [N, C, H, W];
  /// recon, kl [N] and loss [1] from loss(), in nats per image.
  Tensor& mu() { return mu_view_; }
  Tensor& logvar() { return logvar_view_; }
  Tensor& z() { return z_view_; }
  Tensor& logits() { return *logits_; }
  Tensor& recon() { return recon_view_; }
  Tensor& kl() { return kl_view_; }
  Tensor& loss_value() { return loss_; }

 private:
  VaeConfig cfg_;
  Device device_;
  int64_t fh_, fw_;  // encoder feature map size (H/4, W/4)
  ParamStore ps_;
  std::unique_ptr<VaeEncoderBody> encoder_;
  int64_t flat_;  // F·fh·fw, the encoder's flattened features
  Linear enc_fc_, enc_mu_;
  std::optional<Linear> enc_logvar_;  // VAE only
  Linear dec_fc1_, dec_fc2_;
  std::unique_ptr<VaeDecoderBody> decoder_;
  int64_t cap_ = 0, n_ = 0;
  Tensor zero_logvar_;  // AE: the zeros read through logvar()
  Tensor enc_in_, dec_in_, dflat_, dz_, kl_dim_;  // CVAE: [flat | onehot], [z | onehot] and their gradients
  float kl_weight_ = 1.0f, free_bits_ = 0.0f;
  const StepState* step_state_ = nullptr;
  Tensor eps_, z_, recon_, kl_, loss_, dlogits_, dmu_, dlogvar_;
  Tensor mu_view_, logvar_view_, z_view_, eps_view_, recon_view_, kl_view_;
  Tensor dlogits_view_, dmu_view_, dlogvar_view_;
  Tensor* logits_ = nullptr;
  bool sampled_ = false;
  void ensure(int64_t n);
  // CVAE: throws unless `labels` is on the context's device and holds at least n values.
  void check_labels(const Context& ctx, const IntBuffer* labels, int64_t n, const char* what) const;
  // CVAE: [t | onehot(labels)] in `buffer`'s first n_ rows; otherwise a view of t.
  Tensor with_label(Context& ctx, const Tensor& t, const IntBuffer* labels, Tensor& buffer);
};

}  // namespace cuvae
