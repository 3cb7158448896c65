// FLOP counts of a training step, from the shapes of the layers' last forward pass.
#pragma once

namespace cuvae {

/// Floating-point operations (2 per multiply-add) of one training step through a model's
/// products: convolutions, transposed convolutions and fully connected layers. A layer whose
/// forward product costs f adds f to `forward` and, in the backward pass, f for its weight
/// gradient plus f for its data gradient when one is computed (the first layer computes none).
/// Batch norm, activations, pooling, residual adds and the loss are not counted: they move bytes
/// rather than multiply matrices and add well under 1% of the products' FLOPs.
struct StepFlops {
  double forward = 0;   ///< FLOPs of the forward products
  double backward = 0;  ///< FLOPs of the weight- and data-gradient products
  double total() const { return forward + backward; }
  /// Adds one layer whose forward product costs `f` FLOPs.
  void add(double f, bool need_dx) {
    forward += f;
    backward += need_dx ? 2 * f : f;
  }
};

}  // namespace cuvae
