/* What the optimizer benchmarks (CPU and CUDA) step: GPT-2-small blocks, and a
 * comparison for taking medians. */
#ifndef LT_CLI_BENCH_SHAPES_H
#define LT_CLI_BENCH_SHAPES_H

#include <stddef.h>
#include <stdint.h>

/* One GPT-2-small block: attention qkv and projection, MLP, two LayerNorms, biases. */
typedef struct {
    const char *name;
    int64_t rows, cols; /* cols = 0: a vector of `rows` */
} lt_bench_shape;

static const lt_bench_shape LT_BENCH_BLOCK[] = {
    {"ln_1.weight", 768, 0}, {"ln_1.bias", 768, 0},  {"attn.c_attn.weight", 768, 2304}, {"attn.c_attn.bias", 2304, 0},
    {"attn.c_proj.weight", 768, 768}, {"attn.c_proj.bias", 768, 0}, {"ln_2.weight", 768, 0}, {"ln_2.bias", 768, 0},
    {"mlp.c_fc.weight", 768, 3072}, {"mlp.c_fc.bias", 3072, 0}, {"mlp.c_proj.weight", 3072, 768},
    {"mlp.c_proj.bias", 768, 0},
};
#define LT_BENCH_NBLOCK ((int)(sizeof LT_BENCH_BLOCK / sizeof LT_BENCH_BLOCK[0]))

/* Elements of one block. */
static inline size_t lt_bench_block_numel(void) {
    size_t n = 0;
    for (int i = 0; i < LT_BENCH_NBLOCK; i++)
        n += (size_t)LT_BENCH_BLOCK[i].rows * (size_t)(LT_BENCH_BLOCK[i].cols ? LT_BENCH_BLOCK[i].cols : 1);
    return n;
}

/* qsort comparison of doubles, ascending. */
static inline int lt_bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
