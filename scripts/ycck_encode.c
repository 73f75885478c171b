/* Writes a YCCK JPEG (Adobe APP14 transform 2), which neither Pillow nor cjpeg can write.
 *
 *   ycck_encode WIDTH HEIGHT QUALITY < cmyk.raw > out.jpg
 *
 * Input: WIDTH*HEIGHT*4 bytes of CMYK in libjpeg's (Adobe, inverted) convention, i.e. exactly
 * what a decoder returns for out_color_space = JCS_CMYK. libjpeg converts CMYK -> YCCK itself
 * (jpeg_set_colorspace(JCS_YCCK) also turns on the Adobe marker). Build with: cc ... -ljpeg */
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s WIDTH HEIGHT QUALITY < cmyk.raw > out.jpg\n", argv[0]);
        return 2;
    }
    int width = atoi(argv[1]), height = atoi(argv[2]), quality = atoi(argv[3]);
    size_t row_bytes = (size_t)width * 4;
    unsigned char *pixels = malloc(row_bytes * height);
    if (!pixels || fread(pixels, 1, row_bytes * height, stdin) != row_bytes * height) {
        fprintf(stderr, "short input\n");
        return 1;
    }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, stdout);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 4;
    cinfo.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, JCS_YCCK);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = pixels + row_bytes * cinfo.next_scanline;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(pixels);
    return 0;
}
