/* libFuzzer entry for lt_optim_load: the input's first byte chooses an
 * optimizer (below), the rest is the state file handed to it, as a damaged or
 * foreign optimizer.safetensors would be on --resume_from_checkpoint. Each
 * kind has one optimizer (two parameters, one step taken), made once (making
 * one builds its quantization tables: most of an input's time otherwise), and
 *   - a refused file leaves it exactly as it was (the header's promise: its
 *     saved state is byte for byte the one saved when it was made), with a
 *     message that names the file;
 *   - an accepted file steps without a sanitizer report, what it then saves
 *     loads into a second optimizer of the kind and saves again byte for
 *     byte, and the first is put back by loading what it saved when made.
 * `LT_FUZZ_SEEDS=DIR fuzz_optim_state` writes one valid seed per optimizer into
 * DIR (fuzz/corpus-optim holds them) and exits. A broken invariant calls
 * __builtin_trap(). Build with `make fuzz`; see fuzz/README.md. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "leantrain/optim.h"

/* names with the options that make their small test tensors take the low-bit path */
static const struct {
    const char *name, *args;
} KINDS[] = {
    {"adamw_torch", ""},
    {"adamw_bnb_8bit", "min_8bit_size=0"},
    {"lion_8bit", "min_8bit_size=0"},
    {"adamw_torch_4bit", ""},
    {"adamw_torch_8bit", ""},
    {"adafactor", ""},
    {"adafactor", "beta1=0.9,relative_step=False,scale_parameter=False,warmup_init=False"},
    {"adamw_anyprecision", "use_kahan_summation=True,momentum_dtype=bfloat16,variance_dtype=bfloat16"},
    {"sgd", "momentum=0.9"},
    {"adagrad", ""},
    {"rmsprop", "momentum=0.5,centered=True"},
};
#define NKINDS ((int)(sizeof KINDS / sizeof KINDS[0]))
#define R 16
#define C 256 /* the matrix: 4096 elements, a multiple of every block size */
#define NB 37

static char dir[256], in_path[300], out_path[300];
static float w[R * C], b[NB], gw[R * C], gb[NB];

/* the optimizer of kind k, one step taken on fixed data */
static lt_optim *make(int k) {
    char err[512];
    lt_hparams hp = lt_hparams_default();
    hp.lr = 1e-2, hp.weight_decay = 0.01;
    lt_optim *o = lt_optim_create(KINDS[k].name, KINDS[k].args, &hp, err, sizeof err);
    if (!o) {
        fprintf(stderr, "fuzz_optim_state: %s\n", err);
        __builtin_trap();
    }
    for (int i = 0; i < R * C; i++) w[i] = 0.01f * (float)((i * 37) % 101 - 50), gw[i] = 0.001f * (float)((i * 11) % 23 - 11);
    for (int i = 0; i < NB; i++) b[i] = 0.1f * (float)(i - 18), gb[i] = 0.01f * (float)((i * 5) % 7 - 3);
    lt_param_desc dw = {.name = "h.0.w", .data = w, .grad = gw, .ndim = 2, .shape = {R, C}};
    lt_param_desc db = {.name = "h.0.b", .data = b, .grad = gb, .ndim = 1, .shape = {NB}};
    EXPECT(lt_optim_add_param(o, &dw) == 0 && lt_optim_add_param(o, &db) == 1);
    EXPECT(lt_optim_step(o, 1.0f) == LT_OK);
    return o;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    EXPECT(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    EXPECT(p && fread(p, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* o's state as saved, in memory */
static unsigned char *saved(lt_optim *o, size_t *n) {
    if (lt_optim_save(o, out_path) != LT_OK) {
        fprintf(stderr, "fuzz_optim_state: save: %s\n", lt_optim_error(o));
        __builtin_trap();
    }
    return slurp(out_path, n);
}

static lt_optim *opt[NKINDS], *other[NKINDS];
static unsigned char *snapshot[NKINDS];
static size_t snapshot_len[NKINDS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    omp_set_num_threads(1); /* tiny tensors: a thread team costs more than it saves */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/lt-fuzz-optim-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("fuzz_optim_state: mkdtemp");
        exit(1);
    }
    snprintf(in_path, sizeof in_path, "%s/in.safetensors", dir);
    snprintf(out_path, sizeof out_path, "%s/out.safetensors", dir);
    const char *seeds = getenv("LT_FUZZ_SEEDS");
    for (int k = 0; k < NKINDS; k++) {
        opt[k] = make(k);
        snapshot[k] = saved(opt[k], &snapshot_len[k]);
        other[k] = make(k);
        if (seeds) {
            char p[600];
            snprintf(p, sizeof p, "%s/%02d_%s", seeds, k, KINDS[k].name);
            FILE *f = fopen(p, "wb");
            unsigned char kb = (unsigned char)k;
            if (!f || fwrite(&kb, 1, 1, f) != 1 || fwrite(snapshot[k], 1, snapshot_len[k], f) != snapshot_len[k] ||
                fclose(f) != 0) {
                perror(p);
                exit(1);
            }
        }
    }
    if (seeds) exit(0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int k = data[0] % NKINDS;
    lt_optim *o = opt[k];
    FILE *f = fopen(in_path, "wb");
    EXPECT(f && fwrite(data + 1, 1, size - 1, f) == size - 1 && fclose(f) == 0);
    size_t n = 0;
    if (lt_optim_load(o, in_path) != LT_OK) {
        const char *msg = lt_optim_error(o);
        if (!msg || !strstr(msg, in_path)) {
            fprintf(stderr, "fuzz_optim_state: the message does not name the file: %s\n", msg ? msg : "(none)");
            __builtin_trap();
        }
        unsigned char *now = saved(o, &n);
        EXPECT(n == snapshot_len[k] && !memcmp(now, snapshot[k], n));
        free(now);
        return 0;
    }
    /* accepted: it steps, and what it saves loads back */
    EXPECT(lt_optim_step(o, 1.0f) == LT_OK);
    unsigned char *first = saved(o, &n);
    EXPECT(rename(out_path, in_path) == 0);
    if (lt_optim_load(other[k], in_path) != LT_OK) {
        fprintf(stderr, "fuzz_optim_state: its own save does not load back: %s\n", lt_optim_error(other[k]));
        __builtin_trap();
    }
    size_t n2 = 0;
    unsigned char *second = saved(other[k], &n2);
    EXPECT(n2 == n && !memcmp(first, second, n));
    free(first), free(second);
    /* back to the state it was made with; every 256 accepted files made anew, since each distinct quantization
     * map a file brings stays in the optimizer's table list until it is freed (real runs load one map pair) */
    static unsigned accepted[NKINDS];
    if (++accepted[k] % 256 == 0) {
        lt_optim_free(opt[k]), lt_optim_free(other[k]);
        opt[k] = make(k), other[k] = make(k);
        return 0;
    }
    f = fopen(in_path, "wb");
    EXPECT(f && fwrite(snapshot[k], 1, snapshot_len[k], f) == snapshot_len[k] && fclose(f) == 0);
    EXPECT(lt_optim_load(o, in_path) == LT_OK);
    return 0;
}
