// The status page's files (src/app/page/), compiled into the binary by
// cmake/embed_page.cmake: what GET / and its assets serve.
#pragma once
#include <string_view>
#include <vector>

namespace vigil {

struct PageAsset {
  const char* path;          // "/" for index.html, else "/NAME"
  const char* content_type;
  const char* etag;          // quoted, from a hash of the bytes
  std::string_view body;
};

const std::vector<PageAsset>& page_assets();

}  // namespace vigil
