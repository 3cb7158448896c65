// The latent-space subcommands (interpolate, arithmetic, traverse, embed) and the run-folder
// pictures (plot, report). Each binds its flags to its job's options and calls the job of
// jobs/analysis/latent_jobs.h or folder_jobs.h.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "flags.h"
#include "jobs/analysis/folder_jobs.h"
#include "jobs/analysis/latent_jobs.h"

namespace cuvae::app {

namespace {

/// The flags every latent-space command shares, bound to its job's common fields and `out`.
void add_latent_flags(CLI::App* c, LatentJobCommon& common, std::string& out) {
  c->add_option("--vae", common.vae, "VAE model.safetensors written by train-vae")->required();
  add_dataset_flag(c, common.dataset, "Data set: " + dataset_list() + " (default: the one the VAE was trained on)");
  add_data_flag(c, common.data);
  add_device_flag(c, common.device, kDeviceHelpAuto);
  add_seed_flag(c, common.seed, "Seed (t-SNE initialisation noise; kept for reproducibility elsewhere)");
  add_out_flag(c, out, "Output folder (created; files in it are replaced)");
  add_scale_flag(c, common.scale, "Enlarge PNG images by this factor for viewing")->check(CLI::Range(1, 16));
  add_no_progress_flag(c, common.progress, "No progress bars");
}

/// Prints the files a latent-space job wrote, then its summary line.
void print_result(const LatentJobResult& r) {
  print_written(r.written);
  if (!r.summary.empty()) std::cout << r.summary << "\n";
}

void add_interpolate_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<InterpolateJob>();
  CLI::App* c = app.add_subcommand(
      "interpolate",
      "Interpolate between test images in latent space: one row per pair, the two images at the ends and the "
      "decoded path between their mu in the middle; writes interpolation.png and interpolation.json");
  add_latent_flags(c, job->common, job->out);
  auto* pairs = c->add_option("--pairs", job->pairs, "Test-image index pairs I:J, one row each (e.g. 0:1 3:42)")
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* classes =
      c->add_option("--classes", job->classes, "Class pairs A:B: the first test image of each class (e.g. 1:7)")
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  pairs->excludes(classes);
  c->add_option("--steps", job->steps, "Points on each path, t = 0 … 1 (at least 2)")->capture_default_str();
  c->add_option("--mode", job->mode, "lerp (straight line) or slerp (great circle, White 2016)")->capture_default_str();
  commands.push_back({c, [job] { print_result(interpolate_job(*job)); }});
}

void add_arithmetic_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<ArithmeticJob>();
  CLI::App* c = app.add_subcommand(
      "arithmetic",
      "Latent arithmetic: z = mu(x_I) + alpha*(m_B - m_A), with m_c the mean of mu over class c of the training set "
      "(computed once and kept beside the checkpoint); writes arithmetic.png (per index: image, reconstruction, "
      "alpha x 0.25, 0.5, 0.75, 1) and arithmetic.json");
  add_latent_flags(c, job->common, job->out);
  ArithmeticOptions& a = job->arithmetic;
  c->add_option("--index", a.indices, "Test-image indices to move")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--from-class", a.from_class, "Class A the direction starts from")->required();
  c->add_option("--to-class", a.to_class, "Class B the direction points to")->required();
  c->add_option("--alpha", a.alpha, "Step along m_B - m_A (the grid shows 1/4, 1/2, 3/4 and all of it)")
      ->capture_default_str();
  commands.push_back({c, [job] { print_result(arithmetic_job(*job, std::cout)); }});
}

void add_traverse_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<TraverseJob>();
  CLI::App* c = app.add_subcommand(
      "traverse",
      "Latent traversal: each chosen dimension swept from -range to +range with the others fixed at the base code; "
      "writes traversal.png (rows: dimensions), traversal.csv (per dimension: mean KL over the test set in nats, "
      "activity and whether it is an active unit) and, with --gif, one animated GIF per dimension");
  add_latent_flags(c, job->common, job->out);
  c->add_option("--dims", job->dims, "top-kl:K (the K dimensions with the largest mean KL) or a list such as 3,7,12")
      ->capture_default_str();
  c->add_option("--range", job->range, "Each dimension goes from -range to +range")->capture_default_str();
  c->add_option("--steps", job->steps, "Values per dimension (at least 2)")->capture_default_str();
  c->add_option("--base", job->base,
                "The code the other dimensions keep: zero, index:I (test image I's mu) or class:K (class K's mean mu "
                "over the training set)")
      ->capture_default_str();
  c->add_flag("--gif", job->gif, "Also write traversal_dim<d>.gif, an animated sweep per dimension (needs giflib)");
  commands.push_back({c, [job] { print_result(traverse_job(*job, std::cout)); }});
}

void add_plot_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<PlotJob>();
  CLI::App* c = app.add_subcommand(
      "plot", "Redraw a run folder's pictures: curves.png from metrics.csv (VAE or classifier) and, for a classifier, "
              "confusion.png from confusion.csv");
  c->add_option("--run", job->run, "Run folder written by train-vae or train-classifier")->required();
  commands.push_back({c, [job] { print_written(plot_job(*job)); }});
}

void add_report_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<ReportJob>();
  CLI::App* c = app.add_subcommand(
      "report", "One self-contained HTML page (images inlined, no network) of run and analysis folders: configuration, "
                "metrics, curves, samples, reconstructions, traversals, interpolations, maps, validation, compare and "
                "sweep tables");
  c->add_option("--run", job->report.runs,
                "Folders to include (train-vae, train-classifier, validate, interpolate, traverse, embed, compare, …)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--sweep", job->report.sweeps, "Folders written by cuvae sweep (their table and plots)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--title", job->report.title, "Page title")->capture_default_str();
  add_out_flag(c, job->out, "The .html file to write");
  commands.push_back({c, [job] { print_written({report_job(*job)}); }});
}

void add_embed_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<EmbedJob>();
  CLI::App* c = app.add_subcommand(
      "embed",
      "2-D map of the latent codes (PCA or t-SNE of mu) with trustworthiness and 5-NN accuracy; writes "
      "latents.safetensors, embedding.csv, embedding.png and embed.json");
  add_latent_flags(c, job->common, job->out);
  EmbedOptions& e = job->embed;
  c->add_option("--split", job->split, "test, train or all (the training images, then the test images)")
      ->check(CLI::IsMember({"test", "train", "all"}))
      ->capture_default_str();
  c->add_option("--n", e.n, "Map the first N images of the split (with --split all: 70000 for MNIST)")
      ->capture_default_str();
  c->add_option("--method", e.method, "pca or tsne")->capture_default_str();
  c->add_option("--perplexity", e.tsne.perplexity, "t-SNE perplexity")->capture_default_str();
  c->add_option("--iters", e.tsne.iters, "t-SNE iterations (n_iter)")->capture_default_str();
  c->add_option("--theta", e.tsne.theta, "Barnes-Hut accuracy (0.5 as scikit-learn)")->capture_default_str();
  auto* exact = add_value_flag(c, "--exact", e.tsne.method, TsneMethod::Exact,
                               "Exact O(N^2) t-SNE gradient (CUDA kernel on a GPU, OpenMP on the CPU)");
  auto* approx = add_value_flag(c, "--approx", e.tsne.method, TsneMethod::BarnesHut,
                                "Barnes-Hut t-SNE (theta = --theta); default: chosen by N and device");
  exact->excludes(approx);
  commands.push_back({c, [job] { print_result(embed_job(*job, std::cout)); }});
}

}  // namespace

void add_latent_commands(CLI::App& app, std::vector<Command>& commands) {
  add_interpolate_command(app, commands);
  add_arithmetic_command(app, commands);
  add_traverse_command(app, commands);
  add_plot_command(app, commands);
  add_report_command(app, commands);
  add_embed_command(app, commands);
}

}  // namespace cuvae::app
