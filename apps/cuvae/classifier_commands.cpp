// The classifier's subcommands: train-classifier, eval-classifier, anchor, validate, gradcam.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "core/distributed.h"
#include "flags.h"
#include "jobs/anchor_job.h"
#include "jobs/classifier_trainer.h"
#include "jobs/eval_classifier_job.h"
#include "jobs/explain.h"
#include "jobs/validate.h"

namespace cuvae::app {

namespace {

void add_train_classifier_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<ClassifierTrainOptions>();
  ClassifierTrainOptions& o = *job;
  CLI::App* c = app.add_subcommand(
      "train-classifier",
      "Train a ResNet-18 classifier (torchvision names, small-image stem); writes config.json, metrics.csv, "
      "model.safetensors, per_class.csv, confusion.csv and confusion.png into the run folder. Under mpirun -np N "
      "it trains data-parallel on the CPU: --batch is the global batch, rank 0 writes");
  add_dataset_flag(c, o.dataset);
  add_data_flag(c, o.data_dir);
  c->add_option("--epochs", o.epochs, "Epochs to train (with --resume: total epochs)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  c->add_option("--batch", o.batch, "Images per training step")->check(CLI::Range(2, 65536))->capture_default_str();
  add_accumulate_flag(c, o.accumulate);
  c->add_option("--width", o.width, "Base width: 64 is the standard ResNet-18; 16 or 32 keep CPU runs practical")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  c->add_option("--lr", o.lr, "Peak learning rate of SGD")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--momentum", o.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999999))->capture_default_str();
  c->add_option("--weight-decay", o.weight_decay, "L2 weight decay")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  add_value_flag(c, "--no-nesterov", o.nesterov, false, "Plain momentum instead of Nesterov momentum");
  c->add_option("--schedule", o.schedule, "Learning-rate schedule: onecycle, cosine or constant")
      ->check(CLI::IsMember({"onecycle", "cosine", "constant"}))
      ->capture_default_str();
  add_value_flag(c, "--no-augment", o.augment, false, "No random crop or flip");
  add_value_flag(c, "--sync-batchnorm", o.sync_batchnorm, true,
                 "Under mpirun -np N: batch norm over the global batch's statistics (as one process)");
  c->add_option("--pad", o.pad, "Random-crop padding in pixels (default: 2 for 28x28, 4 for 32x32 images)")
      ->check(CLI::Range(0, 16));
  add_seed_flag(c, o.seed, "Seed for initialisation, shuffling and augmentation");
  add_device_flag(c, o.device, kDeviceHelpAuto);
  add_out_flag(c, o.out, "Run folder");
  add_train_test_limit_flags(c, o.train_limit, o.test_limit);
  c->add_flag("--resume", o.resume,
              "Continue the run in --out from its last epoch (exactly: weights, BatchNorm statistics, momentum, "
              "schedule position, augmentation)");
  add_no_progress_flag(c, o.progress);
  add_cuda_graph_flag(c, o.cuda_graph);
  commands.push_back({c, [job] { train_classifier(*job, std::cout); }});
}

void add_eval_classifier_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<EvalClassifierJob>();
  EvalClassifierJob& o = *job;
  CLI::App* c = app.add_subcommand(
      "eval-classifier",
      "Evaluate a classifier checkpoint on a test set; prints {\"accuracy\", \"loss\" (nats/image), \"n\", "
      "\"per_class\", ...} as one JSON line. Under mpirun -np N each rank evaluates 1/N of the images and rank 0 "
      "prints the reduced numbers");
  c->add_option("--checkpoint", o.checkpoint, "model.safetensors written by train-classifier")->required();
  add_dataset_flag(c, o.dataset, "Data set: " + dataset_list() + " (default: the one it was trained on)");
  add_data_flag(c, o.data);
  add_device_flag(c, o.device);
  c->add_option("--batch", o.batch, "Images per evaluation batch")->check(CLI::Range(1, 65536))->capture_default_str();
  c->add_option("--limit", o.limit, "Evaluate only the first N test images (0 = all)")->check(CLI::NonNegativeNumber);
  commands.push_back({c, [job] {
                        const nlohmann::json j = eval_classifier_job(*job);
                        if (Communicator::world().writes()) std::cout << j.dump() << std::endl;  // once under mpirun
                      }});
}

void add_anchor_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<AnchorJob>();
  AnchorJob& o = *job;
  CLI::App* c = app.add_subcommand(
      "anchor",
      "Class-anchored generation: fit a Gaussian mixture to class c's codes mu over the training set (computed once, "
      "kept beside the VAE checkpoint), draw a component m by its weight and z ~ N(mean_cm, s^2 Sigma_cm), and write "
      "the decoded images as a grid (--components 1: z ~ N(mean_c, s^2 Sigma_c))");
  c->add_option("--vae", o.vae, "VAE model.safetensors written by train-vae")->required();
  c->add_option("--class", o.klass, "Class K to sample (0-9)")->required();
  c->add_option("--n", o.n, "Images to generate")->check(CLI::Range(1, 4096))->capture_default_str();
  c->add_option("--noise", o.noise, "Noise scale s (0: the class mean only; 1: the class's full spread)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  add_components_flag(c, o.components);
  add_out_flag(c, o.out);
  add_seed_flag(c, o.seed, "Seed of the samples");
  add_data_flag(c, o.data, "Folder with the VAE's training data (default: data/<dataset>)");
  add_device_flag(c, o.device);
  add_scale_flag(c, o.scale)->check(CLI::Range(1, 16));
  c->add_option("--cols", o.cols, "Images per grid row")->check(CLI::Range(1, 64))->capture_default_str();
  add_no_progress_flag(c, o.progress);
  commands.push_back({c, [job] {
                        const AnchorJobResult r = anchor_job(*job, std::cout);
                        std::cout << "wrote " << r.path << " (" << job->n << " samples of class " << job->klass << " '"
                                  << r.class_name << "', noise " << job->noise << ")\n";
                      }});
}

void add_validate_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<ValidateOptions>();
  ValidateOptions& o = *job;
  CLI::App* c = app.add_subcommand(
      "validate",
      "Check with a classifier that generated images keep their class: anchored samples per class (accuracy, "
      "confidence), prior samples (predicted-class histogram), reconstructions (accuracy, in all and per class) and "
      "a classifier-feature Frechet distance; writes validation.json, validation.md and anchored.png");
  c->add_option("--vae", o.vae, "VAE model.safetensors written by train-vae (a CVAE: class-conditioned samples)")
      ->required();
  c->add_option("--compare-vae", o.compare_vae,
                "With a CVAE in --vae: an unconditional VAE whose class-anchored samples are reported beside the CVAE's");
  c->add_option("--classifier", o.classifier, "Classifier model.safetensors written by train-classifier")->required();
  add_out_flag(c, o.out);
  c->add_option("--n", o.per_class, "Anchored samples per class")->check(CLI::Range(2, 100000))->capture_default_str();
  c->add_option("--noise", o.noise, "Noise scale s of the anchored samples")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  add_components_flag(c, o.components);
  c->add_option("--prior", o.prior, "Prior samples z ~ N(0, I)")->check(CLI::Range(2, 1000000))->capture_default_str();
  c->add_option("--recon", o.recon, "Test images to reconstruct")->check(CLI::Range(2, 1000000))->capture_default_str();
  c->add_option("--reference", o.reference, "Test images whose classifier features are the Frechet reference")
      ->check(CLI::Range(2, 1000000))
      ->capture_default_str();
  add_seed_flag(c, o.seed, "Seed of the samples");
  add_data_flag(c, o.data_dir);
  add_device_flag(c, o.device);
  add_scale_flag(c, o.scale)->check(CLI::Range(1, 16));
  add_no_progress_flag(c, o.progress);
  commands.push_back({c, [job] { validate_generation(*job, std::cout); }});
}

void add_gradcam_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<GradcamJob>();
  GradcamJob& o = *job;
  CLI::App* c = app.add_subcommand(
      "gradcam",
      "Grad-CAM: which pixels drove the classifier's prediction. Explains test images (--index), PNG files "
      "(--image) or class-anchored samples of a VAE (--vae with --anchor); writes one PNG per image (the image and "
      "its turbo heat map with the predicted class and confidence) and gradcam.json");
  c->add_option("--classifier", o.classifier, "Classifier model.safetensors written by train-classifier")->required();
  auto* index = c->add_option("--index", o.index, "Test-set image indices to explain")
                    ->check(CLI::NonNegativeNumber)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* image = c->add_option("--image", o.image, "PNG files to explain (the classifier's size: 28x28 or 32x32)")
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* vae = c->add_option("--vae", o.vae, "Explain class-anchored samples of this VAE checkpoint (with --anchor)");
  auto* anchor = c->add_option("--anchor", o.anchor, "Class whose anchored samples --vae generates")->needs(vae);
  vae->needs(anchor);
  index->excludes(image)->excludes(vae);
  image->excludes(vae);
  c->add_option("--n", o.n, "Anchored samples to explain (with --vae)")->check(CLI::Range(1, 256))->capture_default_str();
  c->add_option("--noise", o.noise, "Noise scale of the anchored samples")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  add_components_flag(c, o.components);
  c->add_option("--layer", o.layer, "Layer whose activations are weighted: layer3 or layer4 (also layer1, layer2)")
      ->check(CLI::IsMember({"layer1", "layer2", "layer3", "layer4"}))
      ->capture_default_str();
  c->add_option("--class", o.klass, "Explain this class's score (default: each image's predicted class)");
  add_dataset_flag(c, o.dataset, "Data set of --index (default: the one the classifier was trained on)");
  add_data_flag(c, o.data);
  add_out_flag(c, o.out);
  add_scale_flag(c, o.scale, "Enlarge each image by this factor")->check(CLI::Range(1, 64));
  add_seed_flag(c, o.seed, "Seed of the anchored samples");
  add_device_flag(c, o.device);
  c->add_flag("--save-maps", o.save_maps,
              "Also write maps.safetensors: cam [N,H,W] F32 (the maps in [0,1]) and index [N] I64 (test index, or "
              "position)");
  commands.push_back({c, [job] { gradcam_job(*job, std::cout); }});
}

}  // namespace

void add_classifier_commands(CLI::App& app, std::vector<Command>& commands) {
  add_train_classifier_command(app, commands);
  add_eval_classifier_command(app, commands);
  add_anchor_command(app, commands);
  add_validate_command(app, commands);
  add_gradcam_command(app, commands);
}

}  // namespace cuvae::app
