// Jobs over run folders given as text on the command line: `cuvae sweep` (a grid of training runs
// from comma-separated lists), `cuvae plot` (a run folder's pictures redrawn) and `cuvae report`
// (many folders gathered into one HTML page).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "jobs/analysis/compare.h"
#include "jobs/analysis/report.h"

namespace cuvae {

/// Everything `cuvae sweep` takes: the grid's two axes as the text the user gave.
struct SweepJob {
  SweepOptions sweep;                    ///< everything but the axes (sweep.latents, sweep.betas are set from the text)
  std::string latents = "2,8,16,32,64";  ///< comma-separated latent sizes, each in [1, 4096]
  std::string betas = "0.5,1,2,4,8";     ///< comma-separated KL weights in [0, 1e6]; not read for --model ae
};

/// Parses the two lists and runs run_sweep (progress and results go to `log`). Throws
/// cuvae::Error naming --latent or --beta for an empty list, a non-number or a value out of
/// range, and as run_sweep.
std::vector<RunSummary> sweep_job(const SweepJob& job, std::ostream& log);

/// Everything `cuvae plot` takes.
struct PlotJob {
  std::string run;  ///< run folder written by train-vae or train-classifier
};

/// Redraws curves.png and, for a classifier, confusion.png (see plot_run); returns the paths
/// written. Throws cuvae::Error when this build has no PLplot, and as plot_run.
std::vector<std::string> plot_job(const PlotJob& job);

/// Everything `cuvae report` takes.
struct ReportJob {
  ReportOptions report;                  ///< folders and title of the page
  std::string out = "runs/report.html";  ///< the .html file to write
};

/// Writes the report (see write_report) and returns its path. Throws as write_report.
std::string report_job(const ReportJob& job);

}  // namespace cuvae
