/* The device GPT-2's memory plan and activation layout (model/gpt2_device_host.c),
 * which every build has, and the device model's refusal without CUDA or a
 * device. Runs on the host; tests/gpu/gpu_gpt2_model checks on a device (or
 * in `make cuda-emu`) that the plan equals the bytes actually allocated.
 *
 * Checked: the layout's sub-buffers are 256-byte aligned, in order, without
 * overlap, each of the size its documented shape gives (recomputed here from
 * the shapes in gpt2_device.h), the logits rows padded to a multiple of 64,
 * the logits buffer one chunk of rows with set_head_rows (fp16: plus the
 * fp32 [V, C] head-gradient sum, and only where that still saves memory);
 * the plan's weights and gradients equal the CPU model's plan (same
 * parameter layout) with and without per-block gradients, pure bf16 halves
 * the weights, bf16 compute adds a bf16 copy, checkpointing and bf16 shrink
 * the activations, fp16 plans exactly bf16's bytes with the logits whole;
 * the trainer's chunks save GPT-2 at 4 x 1024 exactly 3072 rows of logits
 * (fp16: less the sum); bad precisions (pure
 * parameters with fp16 among them) and sizes are refused. */
#include <string.h>

#include "kernels/optim_kernels_cuda.h"
#include "model/cuda/gpt2_device.h"
#include "testutil.h"

static size_t al(size_t n) { return (n + 255) / 256 * 256; }

/* The layout's sizes recomputed from the shapes documented in gpt2_device.h. */
static void check_layout(const lt_gpt2_config *c, int B, int T, int ckpt, lt_gpt2_precision p, int head_rows) {
    char err[256];
    lt_gpt2_dev_layout lay;
    CHECK(lt_gpt2_dev_layout_of(c, B, T, ckpt, p, head_rows, &lay, err, sizeof err) == LT_OK, "layout: %s", err);
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head, BT = (size_t)B * (size_t)T;
    size_t LI = ckpt ? 1 : L, F = 4, ldv = ((size_t)c->vocab_size + 63) / 64 * 64, S = p == LT_GPT2_F32 ? 4 : 2;
    /* the logits' rows: chunks of equal size, at most head_rows; fp16 adds the fp32 head sum [V, C] and chunks
       only where that is smaller than the logits it saves */
    size_t R = BT, hsum = 0;
    if (head_rows > 0 && (size_t)head_rows < BT) {
        size_t k = (BT + (size_t)head_rows - 1) / (size_t)head_rows;
        R = (BT + k - 1) / k;
        if (p == LT_GPT2_F16) {
            hsum = (size_t)c->vocab_size * C * 4;
            if ((BT - R) * ldv * 2 <= hsum) R = BT, hsum = 0;
        }
    }
    size_t want[LT_GPT2_DEV_NBUF] = {
        [LT_GPT2_DEV_ENCODED] = BT * C * S,
        [LT_GPT2_DEV_LN1] = LI * BT * C * S,
        [LT_GPT2_DEV_LN1_MEAN] = LI * BT * F,
        [LT_GPT2_DEV_LN1_RSTD] = LI * BT * F,
        [LT_GPT2_DEV_QKV] = LI * BT * 3 * C * S,
        [LT_GPT2_DEV_ATT] = LI * B * NH * T * F,
        [LT_GPT2_DEV_ATTY] = LI * BT * C * S,
        [LT_GPT2_DEV_RES2] = LI * BT * C * S,
        [LT_GPT2_DEV_LN2] = LI * BT * C * S,
        [LT_GPT2_DEV_LN2_MEAN] = LI * BT * F,
        [LT_GPT2_DEV_LN2_RSTD] = LI * BT * F,
        [LT_GPT2_DEV_FCH] = LI * BT * 4 * C * S,
        [LT_GPT2_DEV_FCHG] = LI * BT * 4 * C * S,
        [LT_GPT2_DEV_RES3] = L * BT * C * S,
        [LT_GPT2_DEV_LNF] = BT * C * S,
        [LT_GPT2_DEV_LNF_MEAN] = BT * F,
        [LT_GPT2_DEV_LNF_RSTD] = BT * F,
        [LT_GPT2_DEV_LOGITS] = R * ldv * S,
        [LT_GPT2_DEV_LSE] = BT * F,
        [LT_GPT2_DEV_LOSSES] = BT * F,
        [LT_GPT2_DEV_DRES] = BT * C * S,
        [LT_GPT2_DEV_DLN] = BT * C * S,
        [LT_GPT2_DEV_DBIG] = BT * 4 * C * S,
        [LT_GPT2_DEV_DQKV] = BT * 3 * C * S,
        [LT_GPT2_DEV_DATTY] = BT * C * S,
        [LT_GPT2_DEV_DROW] = (size_t)B * NH * T * F,
        [LT_GPT2_DEV_COLSUM] = 2 * ((BT + 63) / 64) * 4 * C * F,
        [LT_GPT2_DEV_HEADSUM] = hsum,
        [LT_GPT2_DEV_INPUTS] = BT * 4,
        [LT_GPT2_DEV_TARGETS] = BT * 4,
        [LT_GPT2_DEV_PLAN] = (3 * BT + 1) * 4,
        [LT_GPT2_DEV_LOSS_SUM] = 16,
        [LT_GPT2_DEV_NORM] = (LT_GPT2_DEV_NORM_PARTS + 1) * 8,
    };
    size_t at = 0, act = 0, back = 0;
    int bad = 0;
    for (int i = 0; i < LT_GPT2_DEV_NBUF; i++) {
        bad += lay.bytes[i] != want[i] || lay.offset[i] != at || lay.offset[i] % LT_GPT2_DEV_ALIGN;
        if (lay.bytes[i] != want[i]) fprintf(stderr, "  buffer %d: %zu bytes, want %zu\n", i, lay.bytes[i], want[i]);
        at += al(want[i]);
        if (i < LT_GPT2_DEV_NACT) act = at;
        else if (i < LT_GPT2_DEV_NBACK) back = at - act;
    }
    CHECK(bad == 0, "layout (B %d T %d ckpt %d, precision %d, head rows %d): %d sub-buffers off", B, T, ckpt, (int)p,
          head_rows, bad);
    CHECK(lay.head_chunk == R, "head chunk %zu, want %zu", lay.head_chunk, R);
    CHECK(lay.total_bytes == at && lay.activation_bytes == act && lay.backward_bytes == back &&
              lay.token_bytes == at - act - back,
          "layout totals");
    CHECK(lay.ldv == (int)ldv && lay.ldv % 64 == 0 && lay.ldv >= c->vocab_size, "ldv %d", lay.ldv);
}

int main(void) {
    char err[512];
    lt_gpt2_config small = {.vocab_size = 1031, .n_positions = 64, .n_embd = 128, .n_layer = 3, .n_head = 4,
                            .layer_norm_epsilon = 1e-5};
    lt_gpt2_config gpt2;
    CHECK(lt_gpt2_config_preset("gpt2", &gpt2, err, sizeof err) == LT_OK, "%s", err);
    const lt_gpt2_precision precs[3] = {LT_GPT2_F32, LT_GPT2_BF16, LT_GPT2_F16};
    const int heads[4] = {0, 20, 57, 1335}; /* small: 57 rows in chunks of 20 (3 x 19) and of 57 (one); gpt2: 1024 */
    for (int ckpt = 0; ckpt < 2; ckpt++)
        for (int i = 0; i < 3; i++)
            for (int h = 0; h < 4; h++) {
                check_layout(&small, 3, 19, ckpt, precs[i], heads[h]);
                check_layout(&gpt2, 4, 1024, ckpt, precs[i], heads[h]);
            }
    /* one that fp16 does not chunk: the [V, C] sum outweighs the 3 rows of logits it would save */
    check_layout(&small, 1, 6, 0, LT_GPT2_F16, 3);
    {
        lt_gpt2_dev_layout lay;
        CHECK(lt_gpt2_dev_layout_of(&small, 1, 6, 0, LT_GPT2_F16, 3, &lay, err, sizeof err) == LT_OK &&
                  lay.head_chunk == 6 && lay.bytes[LT_GPT2_DEV_HEADSUM] == 0 &&
                  lt_gpt2_dev_layout_of(&small, 1, 6, 0, LT_GPT2_BF16, 3, &lay, err, sizeof err) == LT_OK &&
                  lay.head_chunk == 3,
              "fp16 keeps small logits whole, bf16 chunks them");
    }

    /* weights and gradients: the CPU model's layout */
    for (int pb = 0; pb < 2; pb++) {
        lt_gpt2_dev_memory d;
        lt_gpt2_memory h;
        CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, pb, LT_GPT2_F32, 0, 0, &d, err, sizeof err) == LT_OK,
              "%s", err);
        CHECK(lt_gpt2_memory_plan(&gpt2, 4, 1024, 0, pb, LT_GPT2_F32, 0, 0, &h, err, sizeof err) == LT_OK, "%s", err);
        CHECK(d.num_params == 124439808 && d.num_params == h.num_params, "params %zu", d.num_params);
        CHECK(d.weight_bytes == h.weight_bytes, "weights %zu vs the CPU's %zu", d.weight_bytes, h.weight_bytes);
        CHECK(d.grad_bytes == h.grad_bytes, "gradients %zu vs the CPU's %zu (per-block %d)", d.grad_bytes,
              h.grad_bytes, pb);
        CHECK(d.weight16_bytes == 0, "fp32: no bf16 copy");
    }
    lt_gpt2_dev_memory f32, f32c, b16, b16c, pure;
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, 0, LT_GPT2_F32, 0, 0, &f32, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 0, LT_GPT2_F32, 0, 0, &f32c, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, 0, LT_GPT2_BF16, 0, 0, &b16, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 0, LT_GPT2_BF16, 0, 0, &b16c, err, sizeof err) == LT_OK,
          "%s", err);
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 1, LT_GPT2_BF16, 1, 0, &pure, err, sizeof err) == LT_OK,
          "%s", err);
    CHECK(b16.weight16_bytes * 2 == b16.weight_bytes && pure.weight16_bytes == 0, "the bf16 copy");
    CHECK(pure.weight_bytes * 2 == f32.weight_bytes, "pure bf16 halves the weights");
    /* checkpointing keeps one block's internals instead of 12; the logits [BT, ldv] and the 12 block outputs stay
     * (at 4 x 1024: 0.36 of the activations; the attention keeps no T x T matrix that checkpointing would drop) */
    CHECK(f32c.activation_bytes < f32.activation_bytes * 2 / 5, "checkpointing keeps far fewer activations");
    CHECK(b16.activation_bytes < f32.activation_bytes * 11 / 20, "bf16 activations about half of fp32's");
    /* fp16 stores the same 2 bytes per value as bf16, with the same fp32 masters and gradients */
    lt_gpt2_dev_memory f16, f16c;
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, 0, LT_GPT2_F16, 0, 0, &f16, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 0, LT_GPT2_F16, 0, 0, &f16c, err, sizeof err) == LT_OK, "%s", err);
    CHECK(!memcmp(&f16, &b16, sizeof f16) && !memcmp(&f16c, &b16c, sizeof f16c), "fp16 plans differ from bf16's");
    /* the trainer's chunks (lt_gpt2_head_rows_default: 1335 rows, so 4 chunks of 1024): 3072 rows of logits less,
     * and fp16 holds the head's fp32 gradient sum instead (50257 x 768 x 4 bytes, a multiple of 256) */
    const int hr = lt_gpt2_head_rows_default(&gpt2);
    lt_gpt2_dev_memory f32h, b16h, f16h, pureh;
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, 0, LT_GPT2_F32, 0, hr, &f32h, err, sizeof err) == LT_OK &&
              lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 0, LT_GPT2_BF16, 0, hr, &b16h, err, sizeof err) == LT_OK &&
              lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 0, LT_GPT2_F16, 0, hr, &f16h, err, sizeof err) == LT_OK &&
              lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 1, 1, LT_GPT2_BF16, 1, hr, &pureh, err, sizeof err) == LT_OK,
          "%s", err);
    CHECK(hr == 1335, "head rows %d", hr);
    CHECK(f32.total_bytes - f32h.total_bytes == (size_t)3072 * 50304 * 4, "fp32 chunks save %zu bytes",
          f32.total_bytes - f32h.total_bytes);
    CHECK(b16c.total_bytes - b16h.total_bytes == (size_t)3072 * 50304 * 2 &&
              pure.total_bytes - pureh.total_bytes == (size_t)3072 * 50304 * 2,
          "bf16 chunks save %zu bytes", b16c.total_bytes - b16h.total_bytes);
    CHECK(f16c.total_bytes - f16h.total_bytes == (size_t)3072 * 50304 * 2 - (size_t)50257 * 768 * 4,
          "fp16 chunks save %zu bytes", f16c.total_bytes - f16h.total_bytes);
    CHECK(f32.total_bytes == f32.weight_bytes + f32.weight16_bytes + f32.grad_bytes + f32.activation_bytes +
                                 f32.backward_bytes + f32.token_bytes,
          "total = the parts");
    printf("gpt2 124M, B 4 x T 1024 on the device (MiB): fp32 %zu, fp32+ckpt %zu, bf16 %zu, bf16+ckpt %zu, "
           "pure bf16+ckpt+per-block %zu (+ cuBLAS workspace %zu); the head in chunks: bf16+ckpt %zu, fp16+ckpt %zu, "
           "pure %zu\n",
           f32.total_bytes >> 20, f32c.total_bytes >> 20, b16.total_bytes >> 20, b16c.total_bytes >> 20,
           pure.total_bytes >> 20, f32.cublas_bytes >> 20, b16h.total_bytes >> 20, f16h.total_bytes >> 20,
           pureh.total_bytes >> 20);

    /* refusals */
    lt_gpt2_dev_memory x;
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, 0, LT_GPT2_F16, 1, 0, &x, err, sizeof err) == LT_ERR_ARG &&
              strstr(err, "fp16"),
          "pure fp16 parameters: %s", err);
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1024, 0, 0, LT_GPT2_F32, 1, 0, &x, err, sizeof err) == LT_ERR_ARG,
          "pure with fp32");
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 4, 1025, 0, 0, LT_GPT2_F32, 0, 0, &x, err, sizeof err) == LT_ERR_ARG,
          "T > n_positions");
    CHECK(lt_gpt2_dev_memory_plan(&gpt2, 0, 16, 0, 0, LT_GPT2_F32, 0, 0, &x, err, sizeof err) == LT_ERR_ARG, "B 0");

    /* no device model without CUDA or a device */
    if (lt_cuda_device_count() == 0) {
        lt_gpt2 *m;
        CHECK(lt_gpt2_create(&small, &m, err, sizeof err) == LT_OK, "%s", err);
        lt_gpt2_dev *d = (lt_gpt2_dev *)&m; /* anything not NULL: create must clear it */
        err[0] = '\0';
        CHECK(lt_gpt2_dev_create(m, NULL, &d, err, sizeof err) == LT_ERR_DEVICE && d == NULL,
              "device model without a device");
        CHECK(strstr(err, lt_cuda_built() ? "device" : "no CUDA support") != NULL, "message: %s", err);
        printf("without a device: %s\n", err);
        lt_gpt2_free(m);
    }
    return lt_test_done("test_gpt2_device_plan");
}
