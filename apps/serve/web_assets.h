// The dashboard page's files (apps/serve/web/), embedded in the binary at build time by
// cmake/embed_web.cmake, so the server needs no files or network at run time.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cuvae::serve {

/// One embedded file: its name in apps/serve/web/, its bytes and its Content-Type.
struct WebAsset {
  std::string name;
  const unsigned char* data;
  size_t size;
  const char* content_type;
};

/// Every file of apps/serve/web/ (index.html is served at "/", the others at "/<name>").
const std::vector<WebAsset>& web_assets();

}  // namespace cuvae::serve
