#include "base/png_write.h"
#include "base/atomic_write.h"
#include "base/error.h"

#include <vector>

// Static: stb's functions stay private to this file.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace attnlab {

static void append_bytes(void * ctx, void * data, int n) {
    auto * buf = static_cast<std::vector<unsigned char> *>(ctx);
    const auto * p = static_cast<const unsigned char *>(data);
    buf->insert(buf->end(), p, p + n);
}

void png_write_rgb(const std::string & path, int w, int h, const uint8_t * rgb) {
    if (w <= 0 || h <= 0) throw input_error(path, "png", "empty image (" + std::to_string(w) + " x " + std::to_string(h) + ")");
    std::vector<unsigned char> buf;
    if (!stbi_write_png_to_func(append_bytes, &buf, w, h, 3, rgb, w * 3)) {
        throw input_error(path, "png", "cannot encode the image");
    }
    write_file_atomic(path, buf.data(), buf.size());
}

} // namespace attnlab
