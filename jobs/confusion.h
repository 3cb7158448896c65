// A classifier's confusion matrix as files: confusion.csv, per_class.csv and a labelled heat map.
#pragma once

#include <string>
#include <vector>

#include "jobs/evaluate.h"

namespace cuvae {

/// Writes confusion.csv, confusion.png (row-normalised, turbo colours, `cell` pixels per
/// class) and per_class.csv for `e` into `dir`; returns the paths written.
std::vector<std::string> write_confusion(const ClassifierEval& e, const std::vector<std::string>& names,
                                         const std::string& dir, int cell = 24);

}  // namespace cuvae
