/* bf16 products through oneDNN's matmul (see gemm_bf16.h). */
#include "model/gemm_bf16.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LT_HAVE_DNNL
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_possible; /* built with oneDNN, the CPU has the instructions, LT_CPU_BF16_GEMM not 0 */
static int g_on;       /* g_possible and not switched off */
static char g_desc[160];

#ifdef LT_HAVE_DNNL
/* oneDNN is opened when a bf16 product is first asked for, not linked: loading it costs a process about 5 MiB of
 * resident memory (its relocations and initializers), which runs that never use it should not pay. The functions
 * used, called through D(name): */
#define DNNL_FUNCS \
    X(dnnl_version) \
    X(dnnl_get_effective_cpu_isa) \
    X(dnnl_engine_create) \
    X(dnnl_stream_create) \
    X(dnnl_memory_desc_init_by_strides) \
    X(dnnl_matmul_desc_init) \
    X(dnnl_primitive_attr_create) \
    X(dnnl_primitive_attr_set_scratchpad_mode) \
    X(dnnl_post_ops_create) \
    X(dnnl_post_ops_append_sum) \
    X(dnnl_primitive_attr_set_post_ops) \
    X(dnnl_primitive_desc_create) \
    X(dnnl_post_ops_destroy) \
    X(dnnl_primitive_attr_destroy) \
    X(dnnl_primitive_desc_query_md) \
    X(dnnl_primitive_create) \
    X(dnnl_primitive_desc_destroy) \
    X(dnnl_primitive_destroy) \
    X(dnnl_memory_desc_get_size) \
    X(dnnl_memory_create) \
    X(dnnl_primitive_execute) \
    X(dnnl_stream_wait) \
    X(dnnl_memory_destroy)
#define X(f) static __typeof__(&f) p_##f;
DNNL_FUNCS
#undef X
#define D(f) p_##f
#define DNNL_STR2(x) #x
#define DNNL_STR(x) DNNL_STR2(x)
#define DNNL_SONAME "libdnnl.so." DNNL_STR(DNNL_VERSION_MAJOR) /* the library of the headers built against */

/* Opens oneDNN and finds its functions; 0, or -1 with the reason in g_desc */
static int open_dnnl(void) {
    void *h = dlopen(DNNL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_desc, sizeof g_desc, "OpenBLAS sgemm on bf16 values (%s not found: apt-get install libdnnl-dev)",
                 DNNL_SONAME);
        return -1;
    }
#define X(f)                                                                                                    \
    if (!(p_##f = (__typeof__(&f))dlsym(h, #f))) {                                                              \
        snprintf(g_desc, sizeof g_desc, "OpenBLAS sgemm on bf16 values (%s lacks %s)", DNNL_SONAME, #f);         \
        dlclose(h);                                                                                             \
        return -1;                                                                                              \
    }
    DNNL_FUNCS
#undef X
    return 0;
}

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;

/* Primitives by shape: a model runs a few dozen shapes, each created once (oneDNN generates its kernels then). */
#define CACHE_SLOTS 48
typedef struct {
    int ta, tb, M, N, K, ldc, acc, ldb16;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t scratch_md;
    size_t scratch;
    unsigned long used; /* last use, for replacing the least recently used slot */
} entry;
static entry g_cache[CACHE_SLOTS];
static unsigned long g_clock;
static void *g_scratch; /* one scratchpad, grown to the largest needed */
static size_t g_scratch_cap;
static uint16_t *g_pack; /* the packed operands, grown likewise */
static size_t g_pack_cap; /* bytes */

/* *buf holds at least `bytes` (64-byte aligned; the contents are not kept: the old buffer goes first, so the two
 * are never held together); 0, or -1 when out of memory (then *buf is NULL) */
static int grow(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return 0;
    free(*buf);
    *buf = NULL, *cap = 0;
    if (posix_memalign(buf, 64, bytes)) {
        *buf = NULL;
        return -1;
    }
    *cap = bytes;
    return 0;
}

static void describe_isa(dnnl_cpu_isa_t isa, char *out, size_t len) {
    snprintf(out, len, "%s", (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx ? "amx_bf16"
                             : "avx512_core_bf16");
}
#endif

static void init(void) {
#ifdef LT_HAVE_DNNL
    const char *env = getenv("LT_CPU_BF16_GEMM");
    if (env && !strcmp(env, "0")) {
        snprintf(g_desc, sizeof g_desc, "OpenBLAS sgemm on bf16 values (LT_CPU_BF16_GEMM=0)");
        return;
    }
    if (open_dnnl()) return;
    const dnnl_version_t *v = D(dnnl_version)();
    dnnl_cpu_isa_t isa = D(dnnl_get_effective_cpu_isa)();
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
        snprintf(g_desc, sizeof g_desc,
                 "OpenBLAS sgemm on bf16 values (this CPU has no AVX512-BF16 or AMX for oneDNN %d.%d.%d)", v->major,
                 v->minor, v->patch);
        return;
    }
    if (D(dnnl_engine_create)(&g_engine, dnnl_cpu, 0) != dnnl_success ||
        D(dnnl_stream_create)(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(g_desc, sizeof g_desc, "OpenBLAS sgemm on bf16 values (oneDNN's CPU engine could not be created)");
        return;
    }
    char isa_name[32];
    describe_isa(isa, isa_name, sizeof isa_name);
    snprintf(g_desc, sizeof g_desc, "oneDNN %d.%d.%d matmul on %s (fp32 sums)", v->major, v->minor, v->patch, isa_name);
    g_possible = g_on = 1;
#else
    snprintf(g_desc, sizeof g_desc, "OpenBLAS sgemm on bf16 values (built without oneDNN: apt-get install libdnnl-dev, "
                                    "then rebuild)");
#endif
}

int lt_gemm_bf16_enabled(void) {
    pthread_once(&g_once, init);
    return __atomic_load_n(&g_on, __ATOMIC_RELAXED);
}

int lt_gemm_bf16_set_enabled(int on) {
    pthread_once(&g_once, init);
    int was = __atomic_load_n(&g_on, __ATOMIC_RELAXED);
    __atomic_store_n(&g_on, on && g_possible, __ATOMIC_RELAXED);
    return was;
}

const char *lt_gemm_bf16_describe(void) {
    pthread_once(&g_once, init);
    return g_desc;
}

#ifdef LT_HAVE_DNNL
/* The memory descriptors of a product: op(A) [M,K] as packed (see pack_rows); op(B) [K,N] as packed, or with
 * ldb16 > 0 the caller's bf16 B itself with that row stride; C [M,N] with row stride ldc. */
static int make_mds(int ta, int tb, int M, int N, int K, int ldc, int ldb16, dnnl_memory_desc_t *a,
                    dnnl_memory_desc_t *b, dnnl_memory_desc_t *c) {
    const int ldb = ldb16 > 0 ? ldb16 : tb ? K : N;
    dnnl_dims_t da = {M, K}, db = {K, N}, dc = {M, N};
    dnnl_dims_t sa = {ta ? 1 : K, ta ? M : 1}, sb = {tb ? 1 : ldb, tb ? ldb : 1}, sc = {ldc, 1};
    return D(dnnl_memory_desc_init_by_strides)(a, 2, da, dnnl_bf16, sa) != dnnl_success ||
           D(dnnl_memory_desc_init_by_strides)(b, 2, db, dnnl_bf16, sb) != dnnl_success ||
           D(dnnl_memory_desc_init_by_strides)(c, 2, dc, dnnl_f32, sc) != dnnl_success;
}

/* A primitive descriptor for the shape (user-managed scratchpad; acc: C added to), or NULL. */
static dnnl_primitive_desc_t make_pd(int ta, int tb, int M, int N, int K, int ldc, int acc, int ldb16) {
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t d;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (make_mds(ta, tb, M, N, K, ldc, ldb16, &a, &b, &c) ||
        D(dnnl_matmul_desc_init)(&d, &a, &b, NULL, &c) != dnnl_success ||
        D(dnnl_primitive_attr_create)(&attr) != dnnl_success ||
        D(dnnl_primitive_attr_set_scratchpad_mode)(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto out;
    if (acc && (D(dnnl_post_ops_create)(&po) != dnnl_success || D(dnnl_post_ops_append_sum)(po, 1.0f) != dnnl_success ||
                D(dnnl_primitive_attr_set_post_ops)(attr, po) != dnnl_success))
        goto out;
    if (D(dnnl_primitive_desc_create)(&pd, &d, attr, g_engine, NULL) != dnnl_success) pd = NULL;
out:
    if (po) D(dnnl_post_ops_destroy)(po);
    if (attr) D(dnnl_primitive_attr_destroy)(attr);
    return pd;
}

/* The cached primitive of a shape, created on first use; NULL when oneDNN cannot make it. Under g_lock. */
static entry *lookup(int ta, int tb, int M, int N, int K, int ldc, int acc, int ldb16) {
    entry *victim = &g_cache[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        entry *e = &g_cache[i];
        if (e->prim && e->ta == ta && e->tb == tb && e->M == M && e->N == N && e->K == K && e->ldc == ldc &&
            e->acc == acc && e->ldb16 == ldb16) {
            e->used = ++g_clock;
            return e;
        }
        if (!e->prim || (victim->prim && e->used < victim->used)) victim = e;
    }
    dnnl_primitive_desc_t pd = make_pd(ta, tb, M, N, K, ldc, acc, ldb16);
    if (!pd) return NULL;
    dnnl_primitive_t prim = NULL;
    const dnnl_memory_desc_t *smd = D(dnnl_primitive_desc_query_md)(pd, dnnl_query_scratchpad_md, 0);
    dnnl_memory_desc_t scratch_md = *smd;
    if (D(dnnl_primitive_create)(&prim, pd) != dnnl_success) prim = NULL;
    D(dnnl_primitive_desc_destroy)(pd);
    if (!prim) return NULL;
    if (victim->prim) D(dnnl_primitive_destroy)(victim->prim);
    *victim = (entry){ta, tb, M, N, K, ldc, acc, ldb16, prim, scratch_md, D(dnnl_memory_desc_get_size)(&scratch_md),
                      ++g_clock};
    return victim;
}

/* Bytes of the pack buffer for a product: op(A)'s M x K bf16 values, and op(B)'s K x N unless B is bf16 already */
static size_t pack_bytes(int M, int N, int K, int b16) {
    return ((size_t)M * (size_t)K + (b16 ? 0 : (size_t)K * (size_t)N)) * sizeof(uint16_t);
}

/* rows x cols floats (row stride ld) -> rows x cols bf16, packed: the upper halves, exact for bf16 values */
static void pack_rows(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    const size_t work = (size_t)rows * (size_t)cols;
#pragma omp parallel for schedule(static) if (work > 65536)
    for (int r = 0; r < rows; r++) {
        const uint32_t *s = (const uint32_t *)(const void *)(src + (size_t)r * (size_t)ld);
        uint16_t *d = dst + (size_t)r * (size_t)cols;
        for (int k = 0; k < cols; k++) d[k] = (uint16_t)(s[k] >> 16);
    }
}
#endif

/* The product with B as floats holding bf16 values (B16 NULL: packed) or as bf16 itself (B16, row stride ldb) */
static int gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, const uint16_t *B16,
                int ldb, float beta, float *C, int ldc) {
    if (!lt_gemm_bf16_enabled() || (beta != 0.0f && beta != 1.0f) || M < 1 || N < 1 || K < 1) return -1;
    if (lda < (ta ? M : K) || ldb < (tb ? K : N) || ldc < N) return -1;
#ifdef LT_HAVE_DNNL
    const int acc = beta == 1.0f, ldb16 = B16 ? ldb : 0;
    int rc = -1;
    pthread_mutex_lock(&g_lock);
    entry *e = lookup(ta, tb, M, N, K, ldc, acc, ldb16);
    if (!e) goto out;
    if (grow(&g_scratch, &g_scratch_cap, e->scratch) ||
        grow((void **)&g_pack, &g_pack_cap, pack_bytes(M, N, K, B16 != NULL)))
        goto out;
    uint16_t *pa = g_pack, *pb = B16 ? (uint16_t *)(uintptr_t)B16 : g_pack + (size_t)M * (size_t)K;
    pack_rows(pa, A, ta ? K : M, ta ? M : K, lda);
    if (!B16) pack_rows(pb, B, tb ? N : K, tb ? K : N, ldb);
    dnnl_memory_desc_t a, b, c;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    if (!make_mds(ta, tb, M, N, K, ldc, ldb16, &a, &b, &c) &&
        D(dnnl_memory_create)(&ma, &a, g_engine, pa) == dnnl_success &&
        D(dnnl_memory_create)(&mb, &b, g_engine, pb) == dnnl_success &&
        D(dnnl_memory_create)(&mc, &c, g_engine, C) == dnnl_success &&
        D(dnnl_memory_create)(&ms, &e->scratch_md, g_engine, g_scratch) == dnnl_success) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc},
                                   {DNNL_ARG_SCRATCHPAD, ms}};
        /* (an execution oneDNN refuses has not started: it checks its arguments first) */
        if (D(dnnl_primitive_execute)(e->prim, g_stream, 4, args) == dnnl_success &&
            D(dnnl_stream_wait)(g_stream) == dnnl_success)
            rc = 0;
    }
    if (ma) D(dnnl_memory_destroy)(ma);
    if (mb) D(dnnl_memory_destroy)(mb);
    if (mc) D(dnnl_memory_destroy)(mc);
    if (ms) D(dnnl_memory_destroy)(ms);
out:
    pthread_mutex_unlock(&g_lock);
    return rc;
#else
    (void)A, (void)B, (void)B16, (void)C;
    return -1;
#endif
}

int lt_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
    return gemm(ta, tb, M, N, K, A, lda, B, NULL, ldb, beta, C, ldc);
}

int lt_gemm_bf16_b16(int ta, int tb, int M, int N, int K, const float *A, int lda, const uint16_t *B16, int ldb,
                     float beta, float *C, int ldc) {
    return B16 ? gemm(ta, tb, M, N, K, A, lda, NULL, B16, ldb, beta, C, ldc) : -1;
}

void lt_gemm_bf16_need(int ta, int tb, int M, int N, int K, int ldc, float beta, int ldb16, size_t *pack,
                       size_t *scratch) {
    *pack = *scratch = 0;
    if (!lt_gemm_bf16_enabled() || M < 1 || N < 1 || K < 1 || ldc < N || (ldb16 && ldb16 < (tb ? K : N))) return;
#ifdef LT_HAVE_DNNL
    pthread_mutex_lock(&g_lock);
    dnnl_primitive_desc_t pd = make_pd(ta, tb, M, N, K, ldc, beta == 1.0f, ldb16);
    if (pd) {
        *scratch = D(dnnl_memory_desc_get_size)(D(dnnl_primitive_desc_query_md)(pd, dnnl_query_scratchpad_md, 0));
        *pack = pack_bytes(M, N, K, ldb16 != 0);
        D(dnnl_primitive_desc_destroy)(pd);
    }
    pthread_mutex_unlock(&g_lock);
#else
    (void)ta, (void)tb, (void)beta;
#endif
}

size_t lt_gemm_bf16_held_bytes(void) {
#ifdef LT_HAVE_DNNL
    pthread_mutex_lock(&g_lock);
    size_t b = g_scratch_cap + g_pack_cap;
    pthread_mutex_unlock(&g_lock);
    return b;
#else
    return 0;
#endif
}

void lt_gemm_bf16_release(void) {
#ifdef LT_HAVE_DNNL
    pthread_mutex_lock(&g_lock);
    free(g_scratch), free(g_pack);
    g_scratch = NULL, g_pack = NULL, g_scratch_cap = g_pack_cap = 0;
    pthread_mutex_unlock(&g_lock);
#endif
}
