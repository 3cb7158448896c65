// Files written by the latent-space jobs (interpolate, arithmetic, traverse, embed): PNG grids,
// GIFs, CSV, JSON and safetensors that later steps (report, dashboard) read back. Every file is
// written atomically; each function returns the paths it wrote.
#pragma once

#include <string>
#include <vector>

#include "jobs/analysis/embed_job.h"
#include "jobs/analysis/latent.h"

namespace cuvae {

/// Writes `grid` as a PNG with grid.cols tiles per row, each pixel enlarged `scale` times.
void write_image_grid(const std::string& path, const ImageGrid& grid, int scale);

/// interpolation.png (one row per pair: x_I, the decoded path, x_J) and interpolation.json
/// ({"dataset", "mode", "steps", "t": [...], "pairs": [{"from", "to", "from_label", "to_label"}]})
/// into `dir` (created if missing).
std::vector<std::string> write_interpolation(const std::string& dir, const InterpolateResult& r, const Dataset& test,
                                             int scale);

/// arithmetic.png (per index: image, reconstruction, then α = ¼, ½, ¾, 1 of --alpha) and
/// arithmetic.json into `dir`.
std::vector<std::string> write_arithmetic(const std::string& dir, const ArithmeticResult& r,
                                          const ArithmeticOptions& opt, const Dataset& test, int scale);

/// traversal.png (rows: dimensions, columns: values), traversal.csv (one row per latent
/// dimension: dim, kl in nats, activity = Cov_x(E_q[z_d]), active (0/1), row in the grid or −1)
/// and, with `gif`, traversal_dim<d>.gif per traversed dimension, into `dir`. `png_name` lets
/// train-vae keep its traversal.png name in a run folder. Throws cuvae::Error when `gif` is asked
/// for and this build has no giflib.
std::vector<std::string> write_traversal(const std::string& dir, const TraverseResult& r, const LatentDimStats& stats,
                                         int scale, bool gif, const std::string& png_name = "traversal.png");

/// latents.safetensors (mu [n, D] F32, label [n] I64, index [n] I64), embedding.csv
/// (index,label,x,y with 9 significant digits), embedding.png (scatter by class with a legend of
/// `class_names`; skipped with a note in the returned list's absence when PLplot is missing) and
/// embed.json into `dir`. `meta` adds fields to embed.json (dataset, split, …).
std::vector<std::string> write_embedding(const std::string& dir, const EmbedResult& r,
                                         const std::vector<std::string>& class_names, const nlohmann::json& meta);

/// Reads latents.safetensors written by write_embedding (mu, label, index). Throws cuvae::Error
/// naming the path and tensor when one is missing or has the wrong dtype or shape.
LatentCodes read_latents(const std::string& path);

}  // namespace cuvae
