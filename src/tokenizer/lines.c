/* Text files line by line, as run_clm reads them (lt_tokenizer_open_lines). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/utf8.h"
#include "tokenizer/tokenizer_internal.h"

/* text normalized and encoded at a time (then cut after the next line end): its copy and its lines' 4-byte ids
   are what reading adds to the tokens it keeps */
#define PIECE ((size_t)8 << 20)
#define GROUP ((size_t)64 << 10) /* about this much text of whole lines per unit of parallel work */

/* Universal newlines, as Python's text mode reads: CR LF and a lone CR become LF. Returns the bytes written. */
static size_t normalize(const char *s, size_t n, char *o) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r') {
            o[k++] = s[i];
            continue;
        }
        o[k++] = '\n';
        if (i + 1 < n && s[i + 1] == '\n') i++;
    }
    return k;
}

static lt_status grow(void **p, size_t *cap, size_t need, size_t elem, const char *path, char *err, size_t errlen) {
    if (need <= *cap) return LT_OK;
    size_t want = *cap + *cap / 2 + 1024;
    if (want < need) want = need;
    void *np = realloc(*p, want * elem);
    if (!np) {
        snprintf(err, errlen, "%s: out of memory for %zu lines or tokens", path, want);
        return LT_ERR_NOMEM;
    }
    *p = np, *cap = want;
    return LT_OK;
}

/* Where line l's text ends: its next line's start, less its LF unless the line breaks are kept. */
static size_t line_end(const char *buf, const size_t *start, size_t l, int keep) {
    const size_t e = start[l + 1];
    return !keep && e > start[l] && buf[e - 1] == '\n' ? e - 1 : e;
}

/* Encodes each line buf[start[l] .. line_end(l)) on its own, the lines of group g (gfirst[g] <= l <
 * gfirst[g + 1]) one after another into part[g], the groups on up to `threads` threads; cnt[l]: line l's ids. */
static lt_status encode_lines(const lt_tokenizer *t, const char *buf, const size_t *start, int keep,
                              const size_t *gfirst, size_t ng, int threads, lt_tok_ids *part, size_t *cnt, char *err,
                              size_t errlen) {
    int nt = threads > 0 ? threads : omp_get_max_threads();
    if (nt > (int)ng) nt = (int)ng;
    if (nt < 1) nt = 1;
    lt_status st = LT_OK;
    char *errs = calloc((size_t)nt, 512);
    lt_status *sts = calloc((size_t)nt, sizeof *sts);
    if (!errs || !sts) {
        free(errs), free(sts);
        snprintf(err, errlen, "out of memory");
        return LT_ERR_NOMEM;
    }
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num();
        char *e = errs + (size_t)tid * 512;
        lt_tok_ctx *c = lt_tok_ctx_new(t, e, 512);
        if (!c) sts[tid] = LT_ERR_NOMEM;
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < ng; g++)
            for (size_t l = gfirst[g]; l < gfirst[g + 1] && c && sts[tid] == LT_OK; l++) {
                const size_t before = part[g].n;
                sts[tid] = lt_tok_encode(c, buf + start[l], line_end(buf, start, l, keep) - start[l], &part[g], e, 512);
                cnt[l] = part[g].n - before;
            }
        lt_tok_ctx_free(c);
    }
    for (int k = 0; k < nt && st == LT_OK; k++)
        if (sts[k]) {
            st = sts[k];
            snprintf(err, errlen, "%s", errs + (size_t)k * 512);
        }
    free(errs), free(sts);
    return st;
}

lt_status lt_tokenizer_open_lines(const lt_tokenizer *t, const char *path, int keep_linebreaks, int threads,
                                  lt_tokenize_progress progress, void *user, lt_text_lines *out, char *err,
                                  size_t errlen) {
    memset(out, 0, sizeof *out);
    lt_tokens raw;
    lt_status st = lt_tokens_open(path, &raw, err, errlen);
    if (st) return st;
    if (raw.bytes == 2) {
        snprintf(err, errlen, "%s is an llm.c token file: it has no lines to read as run_clm does; give "
                 "--data_layout stream (blocks cut from its token stream) or the text it was made from", path);
        lt_tokens_close(&raw);
        return LT_ERR_ARG;
    }
    if (t && (st = lt_tok_fits_u16(t, path, err, errlen))) {
        lt_tokens_close(&raw);
        return st;
    }
    const char *text = raw.data;
    const size_t len = raw.n;
    void *toks = NULL; /* uint16 ids, or without a tokenizer uint8 bytes */
    const size_t esz = t ? sizeof(uint16_t) : 1;
    size_t n = 0, cap = 0, *first = NULL, nlines = 0, lcap = 0;
    char *buf = NULL;
    size_t *start = NULL, scap = 0, *gfirst = NULL, gcap = 0, *cnt = NULL, ccap = 0;
    lt_tok_ids *part = NULL;
    size_t pcap = 0;
    char e2[512];
    for (size_t from = 0; from < len && !st;) {
        /* the piece ends after the first LF at or past `PIECE` bytes (a CR LF never straddles it) */
        size_t to = len;
        if (len - from > PIECE) {
            const char *lf = memchr(text + from + PIECE - 1, '\n', len - (from + PIECE - 1));
            if (lf) to = (size_t)(lf - text) + 1;
        }
        const size_t bad = lt_utf8_check(text + from, to - from); /* a piece ends after an LF: whole characters */
        if (bad < to - from) {
            snprintf(err, errlen, "%s: byte %zu is not UTF-8: run_clm's text loader reads UTF-8 text only (fix the "
                     "file, or give --data_layout stream to read its bytes as they are)", path, from + bad);
            st = LT_ERR_FORMAT;
            break;
        }
        char *nb = realloc(buf, to - from);
        if (!nb) {
            snprintf(err, errlen, "%s: out of memory for %zu bytes of text", path, to - from);
            st = LT_ERR_NOMEM;
            break;
        }
        buf = nb;
        const size_t blen = normalize(text + from, to - from, buf);
        /* the piece's lines: each ends after an LF, the last perhaps at the text's end */
        size_t nl = 0;
        for (size_t p = 0; p < blen && !st;) {
            const char *lf = memchr(buf + p, '\n', blen - p);
            const size_t e = lf ? (size_t)(lf - buf) + 1 : blen;
            if (!(st = grow((void **)&start, &scap, nl + 2, sizeof *start, path, err, errlen))) start[nl++] = p;
            p = e;
        }
        if (st) break;
        start[nl] = blen;
        size_t ng = 0;
        for (size_t l = 0; l < nl && !st;) { /* groups of whole lines, about GROUP bytes each */
            if ((st = grow((void **)&gfirst, &gcap, ng + 2, sizeof *gfirst, path, err, errlen))) break;
            gfirst[ng++] = l;
            const size_t s0 = start[l];
            while (l < nl && start[l] - s0 < GROUP) l++;
        }
        if (st) break;
        gfirst[ng] = nl;
        if ((st = grow((void **)&cnt, &ccap, nl + 1, sizeof *cnt, path, err, errlen))) break;
        if (ng > pcap) {
            lt_tok_ids *np = realloc(part, ng * sizeof *part);
            if (!np) {
                snprintf(err, errlen, "%s: out of memory", path);
                st = LT_ERR_NOMEM;
                break;
            }
            memset(np + pcap, 0, (ng - pcap) * sizeof *np);
            part = np, pcap = ng;
        }
        for (size_t g = 0; g < ng; g++) part[g].n = 0;
        if (t) {
            if ((st = encode_lines(t, buf, start, keep_linebreaks, gfirst, ng, threads, part, cnt, e2, sizeof e2))) {
                snprintf(err, errlen, "%s: tokenizing: %s", path, e2);
                break;
            }
        } else { /* no tokenizer: a byte is a token */
            for (size_t l = 0; l < nl; l++) cnt[l] = line_end(buf, start, l, keep_linebreaks) - start[l];
        }
        size_t pn = t ? 0 : blen;
        for (size_t g = 0; t && g < ng; g++) pn += part[g].n;
        if ((st = grow(&toks, &cap, n + pn + (t ? (len - to) / 3 : 0) + 16, esz, path, err, errlen))) break;
        if ((st = grow((void **)&first, &lcap, nlines + nl + 1, sizeof *first, path, err, errlen))) break;
        if (nlines == 0) first[0] = 0;
        if (t)
            for (size_t g = 0; g < ng; g++)
                for (size_t i = 0; i < part[g].n; i++) ((uint16_t *)toks)[n++] = (uint16_t)part[g].ids[i];
        else
            for (size_t l = 0; l < nl; l++)
                for (size_t i = start[l]; i < start[l] + cnt[l]; i++) ((uint8_t *)toks)[n++] = (uint8_t)buf[i];
        for (size_t l = 0; l < nl; l++) {
            first[nlines + 1] = first[nlines] + cnt[l];
            nlines++;
        }
        lt_tokens_release_before(&raw, to); /* the file's pages read so far are done with */
        from = to;
        if (progress) progress(user, from, len, n);
    }
    for (size_t g = 0; g < pcap; g++) lt_tok_ids_free(&part[g]);
    free(part), free(buf), free(start), free(gfirst), free(cnt);
    lt_tokens_close(&raw);
    if (!st && !toks && !(toks = malloc(esz))) st = LT_ERR_NOMEM;
    if (!st && !first && !(first = calloc(1, sizeof *first))) st = LT_ERR_NOMEM;
    if (st) {
        if (st == LT_ERR_NOMEM && !*err) snprintf(err, errlen, "%s: out of memory", path);
        free(toks), free(first);
        return st;
    }
    if (n && n < cap) { /* the estimate's rest given back (kept as it is where realloc cannot) */
        void *shrunk = realloc(toks, n * esz);
        if (shrunk) toks = shrunk;
    }
    if (t) lt_tokens_adopt_u16(&out->tokens, toks, n);
    else lt_tokens_adopt_u8(&out->tokens, toks, n);
    out->n_lines = nlines;
    out->first = first;
    return LT_OK;
}

void lt_text_lines_close(lt_text_lines *l) {
    lt_tokens_close(&l->tokens);
    free(l->first);
    memset(l, 0, sizeof *l);
}
