// The classifier's subcommands: train-classifier, eval-classifier, anchor, validate, gradcam.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "host/check.h"
#include "host/context.h"
#include "host/dataset.h"
#include "host/fs.h"
#include "host/image.h"
#include "host/safetensors.h"
#include "models/anchor.h"
#include "models/batching.h"
#include "models/checkpoint.h"
#include "models/classifier_trainer.h"
#include "models/explain.h"
#include "models/validate.h"

namespace cuvae::app {

namespace {

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * v);
  return b;
}

int parse_layer(const std::string& s) {
  if (s == "layer1") return 1;
  if (s == "layer2") return 2;
  if (s == "layer3") return 3;
  if (s == "layer4") return 4;
  CUVAE_FAIL("--layer must be layer1, layer2, layer3 or layer4, got '" << s << "'");
}

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
                          Tensor img = decode_images(ctx, *vae, z, o->n);
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
        "confidence), prior samples (predicted-class histogram), reconstructions (accuracy) and a classifier-feature "
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
    struct Opt {
      std::string classifier, out = "runs/gradcam", layer = "layer4", dataset, data, device = "auto", vae;
      std::vector<int64_t> index;
      std::vector<std::string> image;
      int klass = -1, anchor = -1;
      int64_t n = 8;
      double noise = 0.5;
      uint64_t seed = 0;
      int scale = 8;
      bool save_maps = false;
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
    c->add_option("--device", o->device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_flag("--save-maps", o->save_maps,
                "Also write maps.safetensors: cam [N,H,W] F32 (the maps in [0,1]) and index [N] I64 (test index, or position)");
    commands.push_back({c, [=] {
      if (o->index.empty() && o->image.empty() && o->vae.empty())
        CUVAE_FAIL("gradcam: give the images to explain with --index, --image or --vae/--anchor");
      const int layer = parse_layer(o->layer);
      Context ctx(parse_device(o->device));
      auto model = load_resnet(o->classifier, ctx.device(), o->dataset);
      const ResNetConfig& rc = model->config();
      if (o->klass >= rc.classes || o->klass < -1)
        CUVAE_FAIL("--class " << o->klass << " is out of range: the classifier has classes 0.." << rc.classes - 1);
      const std::string ds = !o->dataset.empty() ? o->dataset : (rc.dataset.empty() ? "mnist" : rc.dataset);
      const int64_t P = rc.channels * rc.height * rc.width;
      std::vector<float> pixels;
      std::vector<std::string> tags;
      std::vector<int64_t> truth;
      if (!o->index.empty()) {
        Dataset test = load_dataset(ds, o->data.empty() ? default_data_dir(ds) : o->data, false);
        if (test.c != rc.channels || test.h != rc.height || test.w != rc.width)
          CUVAE_FAIL("data set '" << ds << "' has " << test.c << "x" << test.h << "x" << test.w << " images; the classifier expects "
                                  << rc.channels << "x" << rc.height << "x" << rc.width);
        for (int64_t i : o->index) {
          if (i >= test.n) CUVAE_FAIL("--index " << i << " is out of range: the " << ds << " test set has " << test.n << " images");
          for (int64_t p = 0; p < P; ++p) pixels.push_back(test.images[static_cast<size_t>(i * P + p)] / 255.0f);
          tags.push_back("test" + std::to_string(i));
          truth.push_back(test.labels[static_cast<size_t>(i)]);
        }
      } else if (!o->image.empty()) {
        for (const std::string& f : o->image) {
          std::vector<float> v = read_png(f, static_cast<int>(rc.channels), static_cast<int>(rc.height), static_cast<int>(rc.width));
          pixels.insert(pixels.end(), v.begin(), v.end());
          std::string stem = f.substr(f.find_last_of('/') + 1);
          if (stem.size() > 4) stem = stem.substr(0, stem.size() - 4);
          tags.push_back(stem);
          truth.push_back(-1);
        }
      } else {
        auto v = load_vae(o->vae, ctx.device());
        const VaeConfig& vc = v->config();
        if (vc.channels != rc.channels || vc.height != rc.height || vc.width != rc.width)
          CUVAE_FAIL(o->vae << " makes " << vc.channels << "x" << vc.height << "x" << vc.width << " images; " << o->classifier
                            << " classifies " << rc.channels << "x" << rc.height << "x" << rc.width);
        CUVAE_REQUIRE(o->anchor >= 0 && o->anchor < rc.classes,
                    "--anchor " << o->anchor << " is out of range: expected a class in 0.." << rc.classes - 1);
        AnchorStats s = anchor_stats_for(ctx, *v, o->vae, o->data, std::cout, true);
        Tensor gen = decode_images(ctx, *v, sample_anchored(s, o->anchor, o->n, o->noise, o->seed), o->n);
        pixels = gen.to_vector();
        for (int64_t i = 0; i < o->n; ++i) {
          tags.push_back("anchor" + std::to_string(o->anchor) + "_" + std::to_string(i));
          truth.push_back(o->anchor);
        }
      }
      const int64_t n = static_cast<int64_t>(tags.size());
      Tensor x = Tensor::from_vector(pixels, {n, rc.channels, rc.height, rc.width}, ctx.device());
      GradcamResult r = gradcam_explain(ctx, *model, x, layer, o->klass);
      const std::vector<std::string> names = class_names(ds);
      ensure_dir(o->out);
      nlohmann::json list = nlohmann::json::array();
      for (int64_t i = 0; i < n; ++i) {
        const std::string path = o->out + "/gradcam_" + tags[static_cast<size_t>(i)] + ".png";
        std::string caption = "pred " + names[static_cast<size_t>(r.predicted[i] % 10)] + " " + pct(r.predicted_prob[i]);
        if (o->klass >= 0) caption += ", cam of " + names[static_cast<size_t>(o->klass % 10)];
        write_gradcam_png(path, pixels.data() + i * P, static_cast<int>(rc.channels), static_cast<int>(rc.height),
                          static_cast<int>(rc.width), r.heat.data() + i * rc.height * rc.width, caption, o->scale);
        nlohmann::json e = {{"image", tags[static_cast<size_t>(i)]}, {"png", path}, {"predicted", r.predicted[i]},
                            {"confidence", r.predicted_prob[i]}, {"explained_class", r.target[i]},
                            {"explained_probability", r.target_prob[i]}, {"layer", o->layer}};
        if (truth[static_cast<size_t>(i)] >= 0) e["label"] = truth[static_cast<size_t>(i)];
        list.push_back(e);
        std::cout << "wrote " << path << "  (predicted " << r.predicted[i] << " '" << names[static_cast<size_t>(r.predicted[i] % 10)]
                  << "' " << pct(r.predicted_prob[i]) << ")\n";
      }
      write_file_atomic(o->out + "/gradcam.json", list.dump(2) + "\n");
      std::cout << "wrote " << o->out << "/gradcam.json\n";
      if (o->save_maps) {
        std::vector<int64_t> index(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) index[static_cast<size_t>(i)] = o->index.empty() ? i : o->index[static_cast<size_t>(i)];
        SafetensorsWriter w;
        w.add_f32("cam", {n, rc.height, rc.width}, r.heat);
        w.add_i64("index", {n}, index);
        w.set_metadata("layer", o->layer);
        w.write(o->out + "/maps.safetensors");
        std::cout << "wrote " << o->out << "/maps.safetensors\n";
      }
    }});
  }
}

}  // namespace cuvae::app
