#include "jobs/eval_classifier_job.h"

#include "core/distributed.h"
#include "core/gpu_collectives.h"
#include "io/dataset.h"
#include "jobs/evaluate.h"
#include "models/checkpoint.h"

namespace cuvae {

nlohmann::json eval_classifier_job(const EvalClassifierJob& job) {
  // Under mpirun each rank evaluates its share of the test images and the sums are reduced.
  const Communicator& comm = Communicator::world();
  if (comm.distributed() && job.device != DeviceRequest::CPU) select_cuda_device(comm.local_rank());
  Context ctx(job.device);
  auto model = load_resnet(job.checkpoint, ctx.device(), job.dataset);
  std::string dataset = job.dataset.empty() ? model->config().dataset : job.dataset;
  if (dataset.empty()) dataset = "mnist";
  const Dataset test = load_dataset(dataset, job.data.empty() ? default_data_dir(dataset) : job.data, false);
  const ClassifierEval e = evaluate_classifier(ctx, *model, test, job.batch, job.limit, &comm);
  return {{"accuracy", e.accuracy}, {"loss", e.loss},           {"n", e.n},
          {"dataset", dataset},     {"per_class", e.per_class}, {"device", ctx.description()}, {"ranks", comm.size()}};
}

}  // namespace cuvae
