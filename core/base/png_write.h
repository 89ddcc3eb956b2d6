#pragma once
// The one PNG writer (figures, the app's screenshots): stb_image_write into
// memory, then write_file_atomic, so a killed run never leaves a truncated
// figure behind.
#include <cstdint>
#include <string>

namespace attnlab {

// rgb: h rows of w pixels, 3 bytes each, top row first. Throws input_error
// naming path.
void png_write_rgb(const std::string & path, int w, int h, const uint8_t * rgb);

} // namespace attnlab
