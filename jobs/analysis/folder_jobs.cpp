#include "jobs/analysis/folder_jobs.h"

#include "core/check.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"

namespace cuvae {

std::vector<RunSummary> sweep_job(const SweepJob& job, std::ostream& log) {
  SweepOptions opt = job.sweep;
  opt.latents = parse_int_list(job.latents, "latent", 1, 4096);
  if (opt.model != "ae") opt.betas = parse_number_list(job.betas, "beta", 0.0, 1e6);
  return run_sweep(opt, log);
}

std::vector<std::string> plot_job(const PlotJob& job) {
  if (!plot_available())
    CUVAE_FAIL("plot is unavailable: this build of cuvae has no PLplot (install libplplot-dev and "
               "plplot-driver-cairo and rebuild)");
  return plot_run(job.run);
}

std::string report_job(const ReportJob& job) {
  write_report(job.report, job.out);
  return job.out;
}

}  // namespace cuvae
