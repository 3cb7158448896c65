// The classifier's subcommands: train-classifier, eval-classifier, anchor, validate, gradcam.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "core/check.h"
#include "core/context.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "jobs/anchor.h"
#include "jobs/batching.h"
#include "jobs/classifier_trainer.h"
#include "jobs/explain.h"
#include "jobs/validate.h"
#include "models/checkpoint.h"

namespace cuvae::app {

namespace {

}  // namespace

void add_classifier_commands(CLI::App& app, std::vector<Command>& commands) {
  static const DatasetValidator dataset_ok;
  static const DeviceValidator device_ok;

  // ---- train-classifier -------------------------------------------------------------
  {
    auto o = std::make_shared<ClassifierTrainOptions>();
    auto device = std::make_shared<std::string>("auto");
    auto no_progress = std::make_shared<bool>(false), no_nesterov = std::make_shared<bool>(false),
         no_augment = std::make_shared<bool>(false);
    CLI::App* c = app.add_subcommand(
        "train-classifier",
        "Train a ResNet-18 classifier (torchvision names, small-image stem); writes config.json, metrics.csv, "
        "model.safetensors, per_class.csv, confusion.csv and confusion.png into the run folder");
    c->add_option("--dataset", o->dataset, "Data set: " + dataset_list())->check(dataset_ok)->capture_default_str();
    c->add_option("--data", o->data_dir, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--epochs", o->epochs, "Epochs to train (with --resume: total epochs)")->check(CLI::Range(1, 100000))->capture_default_str();
    c->add_option("--batch", o->batch, "Images per training step")->check(CLI::Range(2, 65536))->capture_default_str();
    c->add_option("--width", o->width, "Base width: 64 is the standard ResNet-18; 16 or 32 keep CPU runs practical")
        ->check(CLI::Range(1, 256))->capture_default_str();
    c->add_option("--lr", o->lr, "Peak learning rate of SGD")->check(CLI::PositiveNumber)->capture_default_str();
    c->add_option("--momentum", o->momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999999))->capture_default_str();
    c->add_option("--weight-decay", o->weight_decay, "L2 weight decay")->check(CLI::Range(0.0, 1.0))->capture_default_str();
    c->add_flag("--no-nesterov", *no_nesterov, "Plain momentum instead of Nesterov momentum");
    c->add_option("--schedule", o->schedule, "Learning-rate schedule: onecycle, cosine or constant")
        ->check(CLI::IsMember({"onecycle", "cosine", "constant"}))->capture_default_str();
    c->add_flag("--no-augment", *no_augment, "No random crop or flip");
    c->add_option("--pad", o->pad, "Random-crop padding in pixels (default: 2 for 28x28, 4 for 32x32 images)")
        ->check(CLI::Range(0, 16));
    c->add_option("--seed", o->seed, "Seed for initialisation, shuffling and augmentation")->capture_default_str();
    c->add_option("--device", *device, "auto (GPU when one works, else CPU), cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_option("--out", o->out, "Run folder")->capture_default_str();
    c->add_option("--train-limit", o->train_limit, "Use only the first N training images (0 = all)")->check(CLI::NonNegativeNumber);
    c->add_option("--test-limit", o->test_limit, "Evaluate on the first N test images (0 = all)")->check(CLI::NonNegativeNumber);
    c->add_flag("--resume", o->resume,
                "Continue the run in --out from its last epoch (exactly: weights, BatchNorm statistics, momentum, "
                "schedule position, augmentation)");
    c->add_flag("--no-progress", *no_progress, "No progress bar");
    auto graph = std::make_shared<std::string>("on");
    c->add_option("--cuda-graph", *graph, "on: on a GPU, capture one training step as a CUDA graph after a warm-up step "
                                          "and replay it for every step; off: launch every kernel every step")
        ->check(CLI::IsMember({"on", "off"}))->capture_default_str();
    commands.push_back({c, [=] {
                          o->device = parse_device(*device);
                          o->progress = !*no_progress;
                          o->nesterov = !*no_nesterov;
                          o->augment = !*no_augment;
                          o->cuda_graph = *graph == "on";
                          train_classifier(*o, std::cout);
                        }});
  }

  // ---- eval-classifier --------------------------------------------------------------
  {
    struct Opt {
      std::string ckpt, dataset, data, device = "auto";
      int64_t batch = 500, limit = 0;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "eval-classifier",
        "Evaluate a classifier checkpoint on a test set; prints {\"accuracy\", \"loss\" (nats/image), \"n\", "
        "\"per_class\", ...} as one JSON line");
    c->add_option("--checkpoint", o->ckpt, "model.safetensors written by train-classifier")->required();
    c->add_option("--dataset", o->dataset, "Data set: " + dataset_list() + " (default: the one it was trained on)")
        ->check(dataset_ok);
    c->add_option("--data", o->data, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--device", o->device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_option("--batch", o->batch, "Images per evaluation batch")->check(CLI::Range(1, 65536))->capture_default_str();
    c->add_option("--limit", o->limit, "Evaluate only the first N test images (0 = all)")->check(CLI::NonNegativeNumber);
    commands.push_back({c, [=] {
                          Context ctx(parse_device(o->device));
                          auto model = load_resnet(o->ckpt, ctx.device(), o->dataset);
                          std::string ds = o->dataset.empty() ? model->config().dataset : o->dataset;
                          if (ds.empty()) ds = "mnist";
                          Dataset test = load_dataset(ds, o->data.empty() ? default_data_dir(ds) : o->data, false);
                          ClassifierEval e = evaluate_classifier(ctx, *model, test, o->batch, o->limit);
                          nlohmann::json j = {{"accuracy", e.accuracy}, {"loss", e.loss},     {"n", e.n},
                                              {"dataset", ds},          {"per_class", e.per_class},
                                              {"device", ctx.description()}};
                          std::cout << j.dump() << std::endl;
                        }});
  }

  // ---- anchor -----------------------------------------------------------------------
  {
    struct Opt {
      std::string vae, out = "runs/anchor", data, device = "auto";
      int klass = -1;
      int64_t n = 64;
      double noise = 0.5;
      uint64_t seed = 0;
      int scale = 2, cols = 8;
      bool no_progress = false;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "anchor",
        "Class-anchored generation: sample z ~ N(mean_c, s^2 Sigma_c) from the per-class statistics of mu over the "
        "training set (computed once, kept beside the VAE checkpoint) and write the decoded images as a grid");
    c->add_option("--vae", o->vae, "VAE model.safetensors written by train-vae")->required();
    c->add_option("--class", o->klass, "Class K to sample (0-9)")->required();
    c->add_option("--n", o->n, "Images to generate")->check(CLI::Range(1, 4096))->capture_default_str();
    c->add_option("--noise", o->noise, "Noise scale s (0: the class mean only; 1: the class's full spread)")
        ->check(CLI::Range(0.0, 100.0))->capture_default_str();
    c->add_option("--out", o->out, "Output folder")->capture_default_str();
    c->add_option("--seed", o->seed, "Seed of the samples")->capture_default_str();
    c->add_option("--data", o->data, "Folder with the VAE's training data (default: data/<dataset>)");
    c->add_option("--device", o->device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_option("--scale", o->scale, "Enlarge PNG images by this factor")->check(CLI::Range(1, 16))->capture_default_str();
    c->add_option("--cols", o->cols, "Images per grid row")->check(CLI::Range(1, 64))->capture_default_str();
    c->add_flag("--no-progress", o->no_progress, "No progress bar");
    commands.push_back({c, [=] {
                          CUVAE_REQUIRE(o->klass >= 0 && o->klass < 10,
                                      "--class " << o->klass << " is out of range: expected a class in 0..9");
                          Context ctx(parse_device(o->device));
                          auto vae = load_vae(o->vae, ctx.device());
                          AnchorStats s = anchor_stats_for(ctx, *vae, o->vae, o->data, std::cout, !o->no_progress);
                          std::vector<float> z = sample_anchored(s, o->klass, o->n, o->noise, o->seed);
                          Tensor img = vae->decode_images(ctx, z, o->n);
                          ensure_dir(o->out);
                          const std::string path = o->out + "/anchor_class" + std::to_string(o->klass) + ".png";
                          write_png_grid(path, img, o->cols, 2, o->scale);
                          const std::string ds = vae->config().dataset.empty() ? "mnist" : vae->config().dataset;
                          std::cout << "wrote " << path << " (" << o->n << " samples of class " << o->klass << " '"
                                    << class_names(ds)[static_cast<size_t>(o->klass)] << "', noise " << o->noise << ")\n";
                        }});
  }

  // ---- validate ---------------------------------------------------------------------
  {
    auto o = std::make_shared<ValidateOptions>();
    auto device = std::make_shared<std::string>("auto");
    auto no_progress = std::make_shared<bool>(false);
    CLI::App* c = app.add_subcommand(
        "validate",
        "Check with a classifier that generated images keep their class: anchored samples per class (accuracy, "
        "confidence), prior samples (predicted-class histogram), reconstructions (accuracy, in all and per class) and a classifier-feature "
        "Frechet distance; writes validation.json, validation.md and anchored.png");
    c->add_option("--vae", o->vae, "VAE model.safetensors written by train-vae (a CVAE: class-conditioned samples)")->required();
    c->add_option("--compare-vae", o->compare_vae, "With a CVAE in --vae: an unconditional VAE whose class-anchored samples are "
                                                  "reported beside the CVAE's");
    c->add_option("--classifier", o->classifier, "Classifier model.safetensors written by train-classifier")->required();
    c->add_option("--out", o->out, "Output folder")->capture_default_str();
    c->add_option("--n", o->per_class, "Anchored samples per class")->check(CLI::Range(2, 100000))->capture_default_str();
    c->add_option("--noise", o->noise, "Noise scale s of the anchored samples")->check(CLI::Range(0.0, 100.0))->capture_default_str();
    c->add_option("--prior", o->prior, "Prior samples z ~ N(0, I)")->check(CLI::Range(2, 1000000))->capture_default_str();
    c->add_option("--recon", o->recon, "Test images to reconstruct")->check(CLI::Range(2, 1000000))->capture_default_str();
    c->add_option("--reference", o->reference, "Test images whose classifier features are the Frechet reference")
        ->check(CLI::Range(2, 1000000))->capture_default_str();
    c->add_option("--seed", o->seed, "Seed of the samples")->capture_default_str();
    c->add_option("--data", o->data_dir, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--device", *device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_option("--scale", o->scale, "Enlarge PNG images by this factor")->check(CLI::Range(1, 16))->capture_default_str();
    c->add_flag("--no-progress", *no_progress, "No progress bar");
    commands.push_back({c, [=] {
                          o->device = parse_device(*device);
                          o->progress = !*no_progress;
                          validate_generation(*o, std::cout);
                        }});
  }

  // ---- gradcam ----------------------------------------------------------------------
  {
    struct Opt : GradcamJob {
      std::string device_name = "auto";
    };
    auto o = std::make_shared<Opt>();
    CLI::App* c = app.add_subcommand(
        "gradcam",
        "Grad-CAM: which pixels drove the classifier's prediction. Explains test images (--index), PNG files "
        "(--image) or class-anchored samples of a VAE (--vae with --anchor); writes one PNG per image (the image and "
        "its turbo heat map with the predicted class and confidence) and gradcam.json");
    c->add_option("--classifier", o->classifier, "Classifier model.safetensors written by train-classifier")->required();
    auto* idx = c->add_option("--index", o->index, "Test-set image indices to explain")->check(CLI::NonNegativeNumber)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    auto* img = c->add_option("--image", o->image, "PNG files to explain (the classifier's size: 28x28 or 32x32)")
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    auto* vae = c->add_option("--vae", o->vae, "Explain class-anchored samples of this VAE checkpoint (with --anchor)");
    c->add_option("--anchor", o->anchor, "Class whose anchored samples --vae generates")->needs(vae);
    vae->needs(c->get_option("--anchor"));
    idx->excludes(img)->excludes(vae);
    img->excludes(vae);
    c->add_option("--n", o->n, "Anchored samples to explain (with --vae)")->check(CLI::Range(1, 256))->capture_default_str();
    c->add_option("--noise", o->noise, "Noise scale of the anchored samples")->check(CLI::Range(0.0, 100.0))->capture_default_str();
    c->add_option("--layer", o->layer, "Layer whose activations are weighted: layer3 or layer4 (also layer1, layer2)")
        ->check(CLI::IsMember({"layer1", "layer2", "layer3", "layer4"}))->capture_default_str();
    c->add_option("--class", o->klass, "Explain this class's score (default: each image's predicted class)");
    c->add_option("--dataset", o->dataset, "Data set of --index (default: the one the classifier was trained on)")->check(dataset_ok);
    c->add_option("--data", o->data, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--out", o->out, "Output folder")->capture_default_str();
    c->add_option("--scale", o->scale, "Enlarge each image by this factor")->check(CLI::Range(1, 64))->capture_default_str();
    c->add_option("--seed", o->seed, "Seed of the anchored samples")->capture_default_str();
    c->add_option("--device", o->device_name, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_flag("--save-maps", o->save_maps,
                "Also write maps.safetensors: cam [N,H,W] F32 (the maps in [0,1]) and index [N] I64 (test index, or position)");
    commands.push_back({c, [=] {
      o->device = parse_device(o->device_name);
      gradcam_job(*o, std::cout);
    }});
  }
}

}  // namespace cuvae::app
