/* Encoding: GPT-2's pre-tokenizer pattern run by PCRE2, byte-pair merges by
 * rank, a bounded per-context word cache, safe split points and the parallel
 * encoder built on them. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* GPT-2's pre-tokenizer as its encoder.py writes it,
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with \s spelled out as Unicode's White_Space property, the \s of Python's
 * regex module that GPT-2 ran it with (and of Hugging Face tokenizers): the
 * Z categories plus TAB..CR and U+0085. PCRE2's own \s is that plus U+180E
 * (a space in Unicode before 6.3), which would split "\u180e." where GPT-2 does not. */
#define WS "\\p{Z}\\t-\\r\\x{85}"
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

/* Safe split points (see lt_tokenizer_next_split): a newline between two
 * non-space characters (cut after it), or a space between a non-space
 * character and a letter (cut before it). Why these are safe: no pre-token
 * contains a newline next to a non-space character, nor ends in a space unless
 * it is all spaces, and the pattern looks at most one character past a
 * pre-token's end, which here is the cut's own non-space neighbour. */
static const char SPLIT_PATTERN[] = "(?<=[^" WS "])\\n(?=[^" WS "])|(?<=[^" WS "]) (?=\\p{L})";

/* Word cache: direct-mapped, fixed size, so memory is bounded however many
 * distinct words a corpus has; a slot holds a word of up to 22 bytes and its
 * up to 8 ids (nearly every word of natural text), 64 bytes in all. */
#define CACHE_BITS 15
#define CACHE_WORD 22
#define CACHE_IDS 8
typedef struct {
    uint64_t hash;
    uint8_t len, n; /* len 0: empty slot */
    uint8_t word[CACHE_WORD];
    int32_t ids[CACHE_IDS];
} cache_slot;

/* Words up to this many bytes are merged by a quadratic scan over a small
 * array (fast for the short words that dominate text); longer ones by a heap,
 * O(n log n), so a megabyte without spaces cannot stall the encoder. */
#define SMALL_WORD 48

typedef struct {
    int32_t rank, pos, left, right;
} heap_ent;

struct lt_tok_ctx {
    const lt_tokenizer *t;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    cache_slot *cache;
    /* merge scratch, grown on demand */
    int32_t *sym, *rk, *mg, *prev, *next;
    heap_ent *heap;
    size_t cap, heap_cap;
};

static void put_err(char *err, size_t errlen, const char *what, int rc) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    if (err && errlen) snprintf(err, errlen, "%s: PCRE2: %s", what, (const char *)msg);
}

lt_status lt_tok_compile(lt_tokenizer *t, char *err, size_t errlen) {
    const char *pats[2] = {GPT2_PATTERN, SPLIT_PATTERN};
    pcre2_code **codes[2] = {&t->re, &t->split_re};
    int *jits[2] = {&t->re_jit, &t->split_jit};
    for (int k = 0; k < 2; k++) {
        int ec;
        PCRE2_SIZE eo;
        /* UTF + UCP: \s, \p{L}, \p{N} are Unicode's classes. MATCH_INVALID_UTF:
         * invalid UTF-8 is allowed in the subject and simply never matches, so
         * encode() can hand those bytes to BPE as they are. */
        *codes[k] = pcre2_compile((PCRE2_SPTR)pats[k], PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
        if (!*codes[k]) {
            put_err(err, errlen, "compiling GPT-2's pre-tokenizer pattern", ec);
            return LT_ERR_STATE;
        }
        /* JIT is several times faster; without it (a platform PCRE2 has no JIT
         * for) the interpreter gives the same matches */
        *jits[k] = pcre2_jit_compile(*codes[k], PCRE2_JIT_COMPLETE) == 0;
    }
    return LT_OK;
}

lt_tok_ctx *lt_tok_ctx_new(const lt_tokenizer *t, char *err, size_t errlen) {
    lt_tok_ctx *c = calloc(1, sizeof *c);
    if (!c) goto nomem;
    c->t = t;
    c->md = pcre2_match_data_create(1, NULL);
    c->mctx = pcre2_match_context_create(NULL);
    c->cache = calloc((size_t)1 << CACHE_BITS, sizeof *c->cache);
    if (!c->md || !c->mctx || !c->cache) goto nomem;
    if (t->re_jit) {
        /* a private JIT stack (the default is 32 KiB on the machine stack); the
         * pattern's repeats need little, this is headroom */
        c->jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        if (!c->jstack) goto nomem;
        pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
    }
    return c;
nomem:
    if (err && errlen) snprintf(err, errlen, "out of memory for a tokenizer context");
    lt_tok_ctx_free(c);
    return NULL;
}

void lt_tok_ctx_free(lt_tok_ctx *c) {
    if (!c) return;
    if (c->md) pcre2_match_data_free(c->md);
    if (c->mctx) pcre2_match_context_free(c->mctx);
    if (c->jstack) pcre2_jit_stack_free(c->jstack);
    free(c->cache);
    free(c->sym), free(c->rk), free(c->mg), free(c->prev), free(c->next), free(c->heap);
    free(c);
}

static int grow(lt_tok_ctx *c, size_t n) {
    if (n <= c->cap) return 1;
    size_t nc = c->cap ? c->cap : 64;
    while (nc < n) nc *= 2;
    int32_t **arrs[5] = {&c->sym, &c->rk, &c->mg, &c->prev, &c->next};
    for (int k = 0; k < 5; k++) {
        int32_t *p = realloc(*arrs[k], nc * sizeof *p);
        if (!p) return 0;
        *arrs[k] = p;
    }
    c->cap = nc;
    return 1;
}

static int ids_reserve(lt_tok_ids *v, size_t more) {
    if (v->n + more <= v->cap) return 1;
    size_t nc = v->cap ? v->cap : 1024;
    while (nc < v->n + more) nc *= 2;
    int32_t *p = realloc(v->ids, nc * sizeof *p);
    if (!p) return 0;
    v->ids = p, v->cap = nc;
    return 1;
}

static inline const lt_tok_merge *find_merge(const lt_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h ^ (h >> 29)) & t->merges_mask;
    for (;; i = (i + 1) & t->merges_mask) {
        const lt_tok_merge *m = &t->merges[i];
        if (m->key == key) return m;
        if (m->key == LT_TOK_EMPTY_KEY) return NULL;
    }
}

static inline void pair_rank(const lt_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
    const lt_tok_merge *m = find_merge(t, a, b);
    *rank = m ? m->rank : LT_TOK_NO_MERGE;
    *merged = m ? m->merged : -1;
}

/* The lowest-ranked adjacent pair merges first; among equal ranks (the same
 * pair) the leftmost. With a merge list learned in order this is GPT-2's
 * "merge every occurrence of the best pair" loop, one occurrence at a time. */
static size_t bpe_small(lt_tok_ctx *c, size_t m) {
    const lt_tokenizer *t = c->t;
    int32_t *sym = c->sym, *rk = c->rk, *mg = c->mg;
    for (size_t i = 0; i + 1 < m; i++) pair_rank(t, sym[i], sym[i + 1], &rk[i], &mg[i]);
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rk[i] < rk[best]) best = i;
        if (rk[best] == LT_TOK_NO_MERGE) break;
        sym[best] = mg[best];
        size_t tail = m - best - 2; /* pairs after the merged one */
        memmove(sym + best + 1, sym + best + 2, tail * sizeof *sym);
        memmove(rk + best + 1, rk + best + 2, tail * sizeof *rk);
        memmove(mg + best + 1, mg + best + 2, tail * sizeof *mg);
        m--;
        if (best > 0) pair_rank(t, sym[best - 1], sym[best], &rk[best - 1], &mg[best - 1]);
        if (best + 1 < m) pair_rank(t, sym[best], sym[best + 1], &rk[best], &mg[best]);
    }
    return m;
}

static inline int heap_less(const heap_ent *a, const heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(lt_tok_ctx *c, size_t *n, heap_ent e) {
    if (*n == c->heap_cap) {
        size_t nc = c->heap_cap ? c->heap_cap * 2 : 256;
        heap_ent *h = realloc(c->heap, nc * sizeof *h);
        if (!h) return 0;
        c->heap = h, c->heap_cap = nc;
    }
    heap_ent *h = c->heap;
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
    return 1;
}

static heap_ent heap_pop(lt_tok_ctx *c, size_t *n) {
    heap_ent *h = c->heap, top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        if (l + 1 < *n && heap_less(&h[l + 1], &h[l])) l++;
        if (!heap_less(&h[l], &last)) break;
        h[i] = h[l];
        i = l;
    }
    if (*n) h[i] = last;
    return top;
}

static int push_pair(lt_tok_ctx *c, size_t *hn, int32_t pos, int32_t nxt) {
    int32_t r, mgd;
    pair_rank(c->t, c->sym[pos], c->sym[nxt], &r, &mgd);
    if (r == LT_TOK_NO_MERGE) return 1;
    return heap_push(c, hn, (heap_ent){r, pos, c->sym[pos], c->sym[nxt]});
}

/* The same merge order as bpe_small over a linked list; stale heap entries
 * (a side already merged away) are recognised by their ids and skipped.
 * Returns the symbol count (compacted into sym), or 0 when out of memory. */
static size_t bpe_heap(lt_tok_ctx *c, size_t m) {
    int32_t *sym = c->sym, *prev = c->prev, *next = c->next;
    for (size_t i = 0; i < m; i++) prev[i] = (int32_t)i - 1, next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < m; i++)
        if (!push_pair(c, &hn, (int32_t)i, (int32_t)i + 1)) return 0;
    while (hn) {
        heap_ent e = heap_pop(c, &hn);
        int32_t nx = next[e.pos];
        if (sym[e.pos] != e.left || nx < 0 || sym[nx] != e.right) continue;
        const lt_tok_merge *mm = find_merge(c->t, e.left, e.right);
        sym[e.pos] = mm->merged;
        sym[nx] = -1;
        next[e.pos] = next[nx];
        if (next[nx] >= 0) prev[next[nx]] = e.pos;
        if (prev[e.pos] >= 0 && !push_pair(c, &hn, prev[e.pos], e.pos)) return 0;
        if (next[e.pos] >= 0 && !push_pair(c, &hn, e.pos, next[e.pos])) return 0;
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
    return k;
}

lt_status lt_tok_bpe_word(lt_tok_ctx *c, const uint8_t *w, size_t n, int method, lt_tok_ids *out, char *err,
                          size_t errlen) {
    if (n == 0) return LT_OK;
    if (!grow(c, n) || !ids_reserve(out, n)) goto nomem;
    for (size_t i = 0; i < n; i++) c->sym[i] = c->t->byte_id[w[i]];
    size_t m = (method == 1 || (method == 0 && n <= SMALL_WORD)) ? bpe_small(c, n) : bpe_heap(c, n);
    if (!m) goto nomem;
    memcpy(out->ids + out->n, c->sym, m * sizeof *c->sym);
    out->n += m;
    return LT_OK;
nomem:
    if (err && errlen) snprintf(err, errlen, "out of memory encoding a %zu-byte word", n);
    return LT_ERR_NOMEM;
}

/* One pre-token: single bytes directly, short words through the cache. */
static lt_status emit_word(lt_tok_ctx *c, const uint8_t *w, size_t n, lt_tok_ids *out, char *err, size_t errlen) {
    if (n == 1) {
        if (!ids_reserve(out, 1)) return lt_tok_bpe_word(c, w, n, 0, out, err, errlen); /* reports the OOM */
        out->ids[out->n++] = c->t->byte_id[w[0]];
        return LT_OK;
    }
    if (n > CACHE_WORD) return lt_tok_bpe_word(c, w, n, 0, out, err, errlen);
    uint64_t h = lt_tok_hash(w, n);
    cache_slot *s = &c->cache[h & (((size_t)1 << CACHE_BITS) - 1)];
    if (s->len == n && s->hash == h && !memcmp(s->word, w, n)) {
        if (!ids_reserve(out, s->n)) return lt_tok_bpe_word(c, w, n, 0, out, err, errlen);
        memcpy(out->ids + out->n, s->ids, s->n * sizeof *s->ids);
        out->n += s->n;
        return LT_OK;
    }
    size_t before = out->n;
    lt_status st = lt_tok_bpe_word(c, w, n, 0, out, err, errlen);
    if (st == LT_OK && out->n - before <= CACHE_IDS) {
        s->hash = h;
        s->len = (uint8_t)n;
        s->n = (uint8_t)(out->n - before);
        memcpy(s->word, w, n);
        memcpy(s->ids, out->ids + before, s->n * sizeof *s->ids);
    }
    return st;
}

static inline int run_match(const pcre2_code *re, int jit, const uint8_t *s, size_t len, size_t pos,
                            pcre2_match_data *md, pcre2_match_context *mctx) {
    return jit ? pcre2_jit_match(re, s, len, pos, 0, md, mctx) : pcre2_match(re, s, len, pos, 0, md, mctx);
}

lt_status lt_tok_encode(lt_tok_ctx *c, const void *text, size_t len, lt_tok_ids *out, char *err, size_t errlen) {
    const lt_tokenizer *t = c->t;
    const uint8_t *s = text;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    size_t pos = 0;
    lt_status st = LT_OK;
    while (pos < len && st == LT_OK) {
        int rc = run_match(t->re, t->re_jit, s, len, pos, c->md, c->mctx);
        size_t ms = len, me = len;
        if (rc >= 0) {
            ms = ov[0], me = ov[1];
            if (me <= ms || me > len) { /* the pattern cannot match empty; never loop on a bad answer */
                if (err && errlen) snprintf(err, errlen, "pre-tokenizer: empty match at byte %zu", ms);
                return LT_ERR_STATE;
            }
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            put_err(err, errlen, "pre-tokenizer", rc);
            return LT_ERR_STATE;
        }
        /* bytes the pattern skipped are invalid UTF-8: one pre-token of their own */
        if (ms > pos) st = emit_word(c, s + pos, ms - pos, out, err, errlen);
        if (st == LT_OK && me > ms) st = emit_word(c, s + ms, me - ms, out, err, errlen);
        pos = me;
    }
    return st;
}

lt_status lt_tokenizer_encode(const lt_tokenizer *t, const void *text, size_t len, lt_tok_ids *out, char *err,
                              size_t errlen) {
    lt_tok_ctx *c = lt_tok_ctx_new(t, err, errlen);
    if (!c) return LT_ERR_NOMEM;
    lt_status st = lt_tok_encode(c, text, len, out, err, errlen);
    lt_tok_ctx_free(c);
    return st;
}

size_t lt_tokenizer_next_split(const lt_tokenizer *t, const void *text, size_t len, size_t from) {
    if (from >= len) return len;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return len; /* no split is always correct, just not parallel */
    size_t p = len;
    int rc = run_match(t->split_re, t->split_jit, text, len, from, md, NULL);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        /* after the newline; before the space */
        p = ((const char *)text)[ov[0]] == '\n' ? ov[1] : ov[0];
    }
    pcre2_match_data_free(md);
    return p;
}

lt_status lt_tokenizer_encode_parallel(const lt_tokenizer *t, const void *text, size_t len, int threads,
                                       lt_tok_ctx **ctxs, lt_tok_ids *out, char *err, size_t errlen) {
    if (threads <= 0) threads = omp_get_max_threads();
    /* a few pieces per thread even out pieces that encode at different speeds */
    size_t want = len < (1u << 16) || threads == 1 ? 1 : (size_t)threads * 4;
    if (want > len / 4096 + 1) want = len / 4096 + 1;
    size_t *cut = malloc((want + 1) * sizeof *cut);
    lt_tok_ids *part = calloc(want, sizeof *part);
    lt_status st = LT_OK;
    if (!cut || !part) {
        free(cut), free(part);
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return LT_ERR_NOMEM;
    }
    size_t np = 0;
    cut[0] = 0;
    while (np + 1 < want) {
        size_t target = len / want * (np + 1);
        if (target < cut[np] + 1) target = cut[np] + 1;
        size_t p = lt_tokenizer_next_split(t, text, len, target);
        if (p >= len) break;
        cut[++np] = p;
    }
    cut[++np] = len;
    int nt = threads < (int)np ? threads : (int)np;
    char *errs = calloc((size_t)nt, 512);
    lt_status *sts = calloc((size_t)nt, sizeof *sts);
    if (!errs || !sts) {
        st = LT_ERR_NOMEM;
        if (err && errlen) snprintf(err, errlen, "out of memory");
        goto done;
    }
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        char *e = errs + (size_t)tid * 512;
        lt_tok_ctx *c = ctxs ? ctxs[tid] : lt_tok_ctx_new(t, e, 512);
        if (!c) sts[tid] = LT_ERR_NOMEM;
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < np; k++)
            if (c && sts[tid] == LT_OK)
                sts[tid] = lt_tok_encode(c, (const char *)text + cut[k], cut[k + 1] - cut[k], &part[k], e, 512);
        if (!ctxs) lt_tok_ctx_free(c);
    }
    for (int k = 0; k < nt && st == LT_OK; k++)
        if (sts[k]) {
            st = sts[k];
            if (err && errlen) snprintf(err, errlen, "%s", errs + (size_t)k * 512);
        }
    size_t total = 0;
    for (size_t k = 0; k < np; k++) total += part[k].n;
    if (st == LT_OK && !ids_reserve(out, total)) {
        st = LT_ERR_NOMEM;
        if (err && errlen) snprintf(err, errlen, "out of memory for %zu token ids", total);
    }
    for (size_t k = 0; k < np && st == LT_OK; k++) {
        memcpy(out->ids + out->n, part[k].ids, part[k].n * sizeof *part[k].ids);
        out->n += part[k].n;
    }
done:
    for (size_t k = 0; k < np; k++) lt_tok_ids_free(&part[k]);
    free(part), free(cut), free(errs), free(sts);
    return st;
}
