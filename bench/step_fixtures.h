// The training steps the benchmarks time: one model, optimizer state and a fixed synthetic batch
// on one device, so that run() is exactly one step of what `cuvae train-vae` or
// `cuvae train-classifier` repeats.
#pragma once

#include <cstdint>
#include <vector>

#include "core/context.h"
#include "jobs/batching.h"
#include "kernels/adam.h"
#include "kernels/sgd.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"

namespace cuvae {
namespace bench {

/// A fixed batch [batch, 1, 28, 28] in [0, 1] (a multiplicative hash of the index), the same
/// values bench/torch_ref.py's `step` command feeds PyTorch.
inline Tensor synthetic_batch(int64_t batch, Device device) {
  Tensor x({batch, 1, 28, 28}, device);
  std::vector<float> host(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>((i * 2654435761u) % 256) / 255.0f;
  memcpy_any(x.data(), x.device(), host.data(), Device::CPU, x.bytes());
  return x;
}

/// One VAE training step: the pinned ConvVAE (28×28×1, 32-d latent), forward with sampling, the
/// fused ELBO and its gradient, backward, Adam.
struct VaeStepFixture {
  Context ctx;
  ConvVAE model;
  Tensor x, m, v;
  AdamConfig ac;
  int64_t step = 0;
  VaeStepFixture(DeviceRequest dev, int64_t batch, CpuBackend cpu = default_cpu_backend())
      : ctx(dev, cpu), model(VaeConfig{}, ctx.device()), x(synthetic_batch(batch, ctx.device())),
        m({model.params().flat_values().numel()}, ctx.device()), v({model.params().flat_values().numel()}, ctx.device()) {
    model.init(0);
  }
  void run() {
    model.forward(ctx, x, true, 1, 2 * static_cast<uint64_t>(step));
    model.loss(ctx, x, true, 1, 2 * static_cast<uint64_t>(step) + 1);
    model.backward(ctx);
    ac.step = ++step;
    adam_step(ctx, model.params().flat_values(), model.params().flat_grads(), m, v, ac);
  }
};

/// ResNetConfig of the given base width at 28×28×1 and 10 classes.
inline ResNetConfig resnet_config(int64_t width) {
  ResNetConfig c;
  c.base_width = width;
  return c;
}

/// One classifier training step: ResNet18 (28×28×1, width w), training-mode forward, fused
/// softmax cross-entropy, backward, SGD with Nesterov momentum.
struct ResNetFixture {
  Context ctx;
  ResNet18 model;
  Tensor x, buf;
  IntBuffer labels;
  SgdConfig sc;
  ResNetFixture(DeviceRequest dev, int64_t width, int64_t batch, CpuBackend cpu = default_cpu_backend())
      : ctx(dev, cpu), model(resnet_config(width), ctx.device()), x(synthetic_batch(batch, ctx.device())),
        buf({model.params().flat_values().numel()}, ctx.device()), labels(batch, ctx.device()) {
    model.init(0);
    std::vector<int32_t> l(static_cast<size_t>(batch));
    for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>(i % 10);
    labels.upload(l);
    sc.lr = 0.01f;
  }
  void run() {
    model.forward(ctx, x, true);
    model.loss(ctx, labels, true);
    model.backward(ctx);
    sgd_step(ctx, model.params().flat_values(), model.params().flat_grads(), buf, sc);
  }
};

}  // namespace bench
}  // namespace cuvae
