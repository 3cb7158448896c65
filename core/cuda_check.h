// Check macros for the CUDA runtime, cuDNN and cuBLAS. Include only from code
// compiled with CUVAE_HAS_CUDA. Each failure becomes cuvae::Error naming the
// library status, the failing statement and file:line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/check.h"

namespace cuvae::detail {
[[noreturn]] inline void throw_lib(const char* lib, const char* status, const char* expr,
                                   const char* file, int line) {
  std::ostringstream os;
  os << lib << " error " << status << " in `" << expr << "` at " << file << ":" << line;
  throw ::cuvae::Error(os.str());
}
const char* cublas_status_name(cublasStatus_t s);
}  // namespace cuvae::detail

/// Throws cuvae::Error if a CUDA runtime call does not return cudaSuccess.
#define CUDA_CHECK(stmt)                                                              \
  do {                                                                                \
    cudaError_t cuvae_e_ = (stmt);                                                    \
    if (cuvae_e_ != cudaSuccess)                                                      \
      ::cuvae::detail::throw_lib("CUDA", cudaGetErrorString(cuvae_e_), #stmt, __FILE__, \
                                 __LINE__);                                           \
  } while (0)

/// Throws cuvae::Error if a cuDNN call does not return CUDNN_STATUS_SUCCESS.
#define CUDNN_CHECK(stmt)                                                               \
  do {                                                                                  \
    cudnnStatus_t cuvae_s_ = (stmt);                                                    \
    if (cuvae_s_ != CUDNN_STATUS_SUCCESS)                                               \
      ::cuvae::detail::throw_lib("cuDNN", cudnnGetErrorString(cuvae_s_), #stmt, __FILE__, \
                                 __LINE__);                                             \
  } while (0)

/// Throws cuvae::Error if a cuBLAS call does not return CUBLAS_STATUS_SUCCESS.
#define CUBLAS_CHECK(stmt)                                                             \
  do {                                                                                 \
    cublasStatus_t cuvae_b_ = (stmt);                                                  \
    if (cuvae_b_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::cuvae::detail::throw_lib("cuBLAS", ::cuvae::detail::cublas_status_name(cuvae_b_), \
                                 #stmt, __FILE__, __LINE__);                           \
  } while (0)

/// Checks the last kernel launch (launch configuration errors) on the current thread.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
