/* Tokenizer files: GPT-2's encoder.json + vocab.bpe (or vocab.json + merges.txt)
 * and Hugging Face tokenizer.json, into the tables of tokenizer_internal.h;
 * saving as vocab.json + merges.txt; decoding. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "tokenizer/tokenizer_internal.h"

static lt_status fail(char *err, size_t errlen, lt_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static lt_status fail(char *err, size_t errlen, lt_status st, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

void lt_tok_ids_free(lt_tok_ids *v) {
    free(v->ids);
    memset(v, 0, sizeof *v);
}

uint64_t lt_tok_hash(const void *p, size_t n) {
    /* multiply-xorshift over 8-byte words: words are short, so per-call cost matters more than quality */
    const uint8_t *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

void lt_tok_byte_unicode(uint32_t b2u[256]) {
    /* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
     * other 68 (controls, space, DEL, NBSP, soft hyphen) for U+0100.. in byte order */
    uint32_t next = 256;
    for (int b = 0; b < 256; b++)
        b2u[b] = ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae)) ? (uint32_t)b : next++;
}

/* ---- reading ---- */

static lt_status read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, LT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, LT_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            return fail(err, errlen, LT_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    *buf = b;
    *len = n;
    return LT_OK;
}

static cJSON *parse_json(const char *path, const char *buf, size_t len, char *err, size_t errlen) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) fail(err, errlen, LT_ERR_FORMAT, "%s: not valid JSON (error at byte %zu)", path, end ? (size_t)(end - buf) : 0);
    return j;
}

/* ---- the builder: tokens collected in any order, then laid out by id ---- */

typedef struct {
    int32_t id;
    size_t off, len;
    int raw; /* an added token whose content is its bytes (not byte-to-unicode text) */
} ent_t;

typedef struct {
    ent_t *ents;
    size_t n, cap;
    char *arena;
    size_t alen, acap;
    uint32_t b2u[256];
    int16_t u2b[324]; /* code point -> byte, -1 where none; the table ends at U+0143 */
} builder_t;

/* UTF-8 text of a token string -> its bytes through the inverse byte table.
 * Returns 0, or the 1-based index of the first character outside GPT-2's byte
 * alphabet (or of invalid UTF-8). */
static size_t unicode_to_bytes(const builder_t *b, const char *s, size_t n, char *out, size_t *outlen) {
    size_t k = 0, ch = 0;
    for (size_t i = 0; i < n;) {
        ch++;
        unsigned c = (unsigned char)s[i];
        uint32_t cp;
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + (size_t)len > n) return ch;
        cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (int k2 = 1; k2 < len; k2++) {
            unsigned cc = (unsigned char)s[i + (size_t)k2];
            if ((cc & 0xc0) != 0x80) return ch;
            cp = cp << 6 | (cc & 0x3f);
        }
        i += (size_t)len;
        if (cp >= 324 || b->u2b[cp] < 0) return ch;
        out[k++] = (char)b->u2b[cp];
    }
    *outlen = k;
    return 0;
}

static lt_status add_ent(builder_t *b, int32_t id, const char *bytes, size_t len, int raw, const char *where, char *err,
                         size_t errlen) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        ent_t *e = realloc(b->ents, nc * sizeof *e);
        if (!e) return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory", where);
        b->ents = e, b->cap = nc;
    }
    if (b->alen + len + 1 > b->acap) {
        size_t nc = b->acap ? b->acap * 2 : 1 << 16;
        while (nc < b->alen + len + 1) nc *= 2;
        char *a = realloc(b->arena, nc);
        if (!a) return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory", where);
        b->arena = a, b->acap = nc;
    }
    memcpy(b->arena + b->alen, bytes, len);
    b->ents[b->n++] = (ent_t){id, b->alen, len, raw};
    b->alen += len;
    return LT_OK;
}

/* A token string quoted for a message, cut when long. */
static const char *shown(const char *s, char *buf, size_t cap) {
    size_t n = strlen(s);
    if (n + 3 <= cap) snprintf(buf, cap, "'%s'", s);
    else snprintf(buf, cap, "'%.*s...'", (int)(cap > 8 ? cap - 8 : 0), s);
    return buf;
}

static lt_status add_vocab_token(builder_t *b, const char *path, const cJSON *item, char *err, size_t errlen) {
    char q[96];
    const char *key = item->string ? item->string : "";
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v != floor(v) || v < 0 || v >= LT_TOK_MAX_VOCAB)
        return fail(err, errlen, LT_ERR_FORMAT, "%s: token %s: the id must be an integer from 0 to %d", path,
                    shown(key, q, sizeof q), LT_TOK_MAX_VOCAB - 1);
    size_t n = strlen(key), blen = 0;
    char *tmp = malloc(n + 1);
    if (!tmp) return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory", path);
    size_t bad = unicode_to_bytes(b, key, n, tmp, &blen);
    lt_status st = LT_OK;
    if (bad)
        st = fail(err, errlen, LT_ERR_FORMAT,
                  "%s: token %s (id %d): character %zu is not in GPT-2's byte alphabet (not a byte-level BPE vocabulary)",
                  path, shown(key, q, sizeof q), (int)v, bad);
    else if (blen == 0)
        st = fail(err, errlen, LT_ERR_FORMAT, "%s: the empty string is a token (id %d)", path, (int)v);
    else
        st = add_ent(b, (int32_t)v, tmp, blen, 0, path, err, errlen);
    free(tmp);
    return st;
}

static int32_t lookup_in(const lt_tokenizer *t, const void *bytes, size_t n) {
    if (!t->bytes_tab) return -1;
    size_t i = (size_t)lt_tok_hash(bytes, n) & t->bytes_mask;
    for (;; i = (i + 1) & t->bytes_mask) {
        int32_t id = t->bytes_tab[i];
        if (id < 0) return -1;
        size_t len = t->tok_off[id + 1] - t->tok_off[id];
        if (len == n && !memcmp(t->tok_bytes + t->tok_off[id], bytes, n)) return id;
    }
}

int32_t lt_tok_lookup(const lt_tokenizer *t, const void *bytes, size_t n) { return lookup_in(t, bytes, n); }

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p *= 2;
    return p;
}

/* Lays the collected tokens out by id and builds the bytes -> id table. */
static lt_status finish_vocab(builder_t *b, lt_tokenizer *t, const char *path, char *err, size_t errlen) {
    if (b->n == 0) return fail(err, errlen, LT_ERR_FORMAT, "%s: the vocabulary is empty", path);
    int32_t mx = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->ents[i].id > mx) mx = b->ents[i].id;
    t->n_vocab = (size_t)mx + 1;
    if (b->alen > UINT32_MAX) return fail(err, errlen, LT_ERR_FORMAT, "%s: the vocabulary is too large", path);
    int32_t *slot = malloc(t->n_vocab * sizeof *slot); /* id -> entry index */
    t->tok_off = calloc(t->n_vocab + 1, sizeof *t->tok_off);
    t->tok_present = calloc(t->n_vocab, 1);
    t->tok_bytes = malloc(b->alen + 1);
    t->bytes_mask = pow2_at_least(b->n * 2) - 1;
    t->bytes_tab = malloc((t->bytes_mask + 1) * sizeof *t->bytes_tab);
    t->held += (t->n_vocab + 1) * sizeof *t->tok_off + t->n_vocab + b->alen + 1 +
               (t->bytes_mask + 1) * sizeof *t->bytes_tab;
    if (!slot || !t->tok_off || !t->tok_present || !t->tok_bytes || !t->bytes_tab) {
        free(slot);
        return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory for %zu tokens", path, t->n_vocab);
    }
    for (size_t i = 0; i < t->n_vocab; i++) slot[i] = -1;
    for (size_t i = 0; i < b->n; i++) {
        int32_t id = b->ents[i].id;
        if (slot[id] >= 0) {
            const ent_t *o = &b->ents[slot[id]];
            /* an added token repeating its vocabulary entry (GPT-2's <|endoftext|> in tokenizer.json) is no conflict */
            if (b->ents[i].raw && o->len == b->ents[i].len && !memcmp(b->arena + o->off, b->arena + b->ents[i].off, o->len))
                continue;
            if (b->ents[i].raw) continue; /* the vocabulary's own entry wins, as in Hugging Face */
            free(slot);
            return fail(err, errlen, LT_ERR_FORMAT, "%s: id %d is used by two tokens", path, id);
        }
        slot[id] = (int32_t)i;
    }
    size_t off = 0;
    for (size_t id = 0; id < t->n_vocab; id++) {
        t->tok_off[id] = (uint32_t)off;
        if (slot[id] < 0) continue;
        const ent_t *e = &b->ents[slot[id]];
        memcpy(t->tok_bytes + off, b->arena + e->off, e->len);
        off += e->len;
        t->tok_present[id] = 1;
    }
    t->tok_off[t->n_vocab] = (uint32_t)off;
    /* the bytes -> id table: the vocabulary's tokens first (two with the same bytes are an error), then the added
     * tokens; an added token whose bytes already are a token is that token, as in Hugging Face (which maps its
     * content to the existing id): its own id is dropped, so that every present id has bytes of its own and the
     * tokenizer saves as a vocab.json (whose keys are the bytes) and loads back the same */
    for (size_t i = 0; i <= t->bytes_mask; i++) t->bytes_tab[i] = -1;
    for (int pass = 0; pass < 2; pass++)
        for (size_t id = 0; id < t->n_vocab; id++) {
            if (!t->tok_present[id] || b->ents[slot[id]].raw != pass) continue;
            const char *s = t->tok_bytes + t->tok_off[id];
            size_t n = t->tok_off[id + 1] - t->tok_off[id];
            int32_t other = lookup_in(t, s, n);
            if (other >= 0 && pass == 1) {
                t->tok_present[id] = 0;
                continue;
            }
            if (other >= 0) {
                char q[96], txt[64];
                size_t k = 0;
                for (size_t j = 0; j < n && k + 5 < sizeof txt; j++) /* bytes shown printable */
                    k += (size_t)snprintf(txt + k, sizeof txt - k,
                                          (unsigned char)s[j] >= 0x21 && (unsigned char)s[j] < 0x7f ? "%c" : "\\x%02x",
                                          (unsigned char)s[j]);
                free(slot);
                return fail(err, errlen, LT_ERR_FORMAT, "%s: two tokens stand for the same bytes %s (ids %d and %zu)",
                            path, shown(txt, q, sizeof q), other, id);
            }
            size_t i = (size_t)lt_tok_hash(s, n) & t->bytes_mask;
            while (t->bytes_tab[i] >= 0) i = (i + 1) & t->bytes_mask;
            t->bytes_tab[i] = (int32_t)id;
        }
    /* the largest id left + 1 (ids are laid out in order, so tok_off[n_vocab] still ends the last one's bytes) */
    while (t->n_vocab > 0 && !t->tok_present[t->n_vocab - 1]) t->n_vocab--;
    free(slot);
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        t->byte_id[c] = lookup_in(t, &ch, 1);
        if (t->byte_id[c] < 0) {
            char u[8];
            uint32_t cp = b->b2u[c];
            /* the character as the file would spell it (UTF-8 of the code point, which is < U+0800 here) */
            if (cp < 0x80) snprintf(u, sizeof u, "%c", (char)cp);
            else snprintf(u, sizeof u, "%c%c", (char)(0xc0 | (cp >> 6)), (char)(0x80 | (cp & 0x3f)));
            return fail(err, errlen, LT_ERR_FORMAT,
                        "%s: no token for byte 0x%02x (written '%s'): a byte-level BPE vocabulary has all 256 bytes",
                        path, c, u);
        }
    }
    t->eot = lookup_in(t, "<|endoftext|>", 13);
    return LT_OK;
}

static lt_status alloc_merges(lt_tokenizer *t, size_t n, const char *path, char *err, size_t errlen) {
    t->merges_mask = pow2_at_least(n * 2) - 1;
    t->merges = malloc((t->merges_mask + 1) * sizeof *t->merges);
    t->merge_list = malloc((n ? n : 1) * sizeof *t->merge_list);
    t->held += (t->merges_mask + 1) * sizeof *t->merges + (n ? n : 1) * sizeof *t->merge_list;
    if (!t->merges || !t->merge_list) return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory for %zu merges", path, n);
    for (size_t i = 0; i <= t->merges_mask; i++) t->merges[i] = (lt_tok_merge){LT_TOK_EMPTY_KEY, 0, 0};
    return LT_OK;
}

static size_t merge_slot(const lt_tokenizer *t, uint64_t key) {
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29)) & t->merges_mask;
}

/* Adds merge "left right" (token strings as written) as the next rank. where: "PATH:LINE" or "PATH: model.merges[i]". */
static lt_status add_merge(builder_t *b, lt_tokenizer *t, const char *left, size_t ln, const char *right, size_t rn,
                           const char *where, char *err, size_t errlen) {
    char *buf = malloc(ln + rn + 2);
    if (!buf) return fail(err, errlen, LT_ERR_NOMEM, "%s: out of memory", where);
    size_t lb = 0, rb = 0;
    int32_t id[2] = {-1, -1};
    const char *part[2] = {left, right};
    size_t plen[2] = {ln, rn};
    lt_status st = LT_OK;
    char q[96], tmp[200];
    for (int k = 0; k < 2 && st == LT_OK; k++) {
        size_t *len = k ? &rb : &lb;
        if (unicode_to_bytes(b, part[k], plen[k], buf + (k ? lb : 0), len) || !*len ||
            (id[k] = lookup_in(t, buf + (k ? lb : 0), *len)) < 0) {
            snprintf(tmp, sizeof tmp, "%.*s", (int)(plen[k] < 150 ? plen[k] : 150), part[k]);
            st = fail(err, errlen, LT_ERR_FORMAT, "%s: token %s is not in the vocabulary", where, shown(tmp, q, sizeof q));
        }
    }
    int32_t merged = st == LT_OK ? lookup_in(t, buf, lb + rb) : -1;
    if (st == LT_OK && merged < 0) {
        snprintf(tmp, sizeof tmp, "%.*s%.*s", (int)(ln < 75 ? ln : 75), left, (int)(rn < 75 ? rn : 75), right);
        st = fail(err, errlen, LT_ERR_FORMAT, "%s: the merged token %s is not in the vocabulary", where,
                  shown(tmp, q, sizeof q));
    }
    free(buf);
    if (st) return st;
    uint64_t key = (uint64_t)(uint32_t)id[0] << 32 | (uint32_t)id[1];
    size_t i = merge_slot(t, key);
    for (; t->merges[i].key != LT_TOK_EMPTY_KEY; i = (i + 1) & t->merges_mask)
        if (t->merges[i].key == key)
            return fail(err, errlen, LT_ERR_FORMAT, "%s: the merge '%.*s %.*s' repeats rank %d", where, (int)ln, left,
                        (int)rn, right, t->merges[i].rank);
    t->merges[i] = (lt_tok_merge){key, (int32_t)t->n_merges, merged};
    t->merge_list[t->n_merges][0] = id[0];
    t->merge_list[t->n_merges][1] = id[1];
    t->n_merges++;
    return LT_OK;
}

static void builder_init(builder_t *b) {
    memset(b, 0, sizeof *b);
    lt_tok_byte_unicode(b->b2u);
    for (int i = 0; i < 324; i++) b->u2b[i] = -1;
    for (int c = 0; c < 256; c++) b->u2b[b->b2u[c]] = (int16_t)c;
}

static void builder_free(builder_t *b) {
    free(b->ents);
    free(b->arena);
}

static lt_tokenizer *new_tokenizer(char *err, size_t errlen) {
    lt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) fail(err, errlen, LT_ERR_NOMEM, "out of memory");
    else t->eot = -1;
    return t;
}

/* The merges of a vocab.bpe / merges.txt text: "#version" first line skipped,
 * blank lines skipped, every other line two tokens separated by white space. */
static lt_status parse_merges_text(builder_t *b, lt_tokenizer *t, const char *path, char *text, size_t len, char *err,
                                   size_t errlen) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    lt_status st = alloc_merges(t, lines, path, err, errlen);
    if (st) return st;
    char *p = text, *end = text + len;
    char where[1200];
    for (size_t line = 1; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        if (e > p && e[-1] == '\r') e--;
        if (line == 1 && e - p >= 8 && !memcmp(p, "#version", 8)) {
            p = next;
            continue;
        }
        const char *f[3];
        size_t fl[3], nf = 0;
        for (char *q = p; q < e && nf < 3;) {
            while (q < e && (*q == ' ' || *q == '\t')) q++;
            if (q == e) break;
            char *s = q;
            while (q < e && *q != ' ' && *q != '\t') q++;
            f[nf] = s, fl[nf] = (size_t)(q - s), nf++;
        }
        snprintf(where, sizeof where, "%s:%zu", path, line);
        if (nf == 0) {
            p = next;
            continue;
        }
        if (nf != 2)
            return fail(err, errlen, LT_ERR_FORMAT, "%s: expected two tokens separated by a space, found %s", where,
                        nf == 1 ? "one" : "more");
        if ((st = add_merge(b, t, f[0], fl[0], f[1], fl[1], where, err, errlen))) return st;
        p = next;
    }
    if (t->n_merges == 0) return fail(err, errlen, LT_ERR_FORMAT, "%s: no merges (the file has no merge lines)", path);
    return LT_OK;
}

static void set_source(lt_tokenizer *t, const char *a, const char *b) {
    if (b) snprintf(t->source, sizeof t->source, "%.540s + %.540s", a, b);
    else snprintf(t->source, sizeof t->source, "%.1090s", a);
}

lt_status lt_tokenizer_load_gpt2(const char *encoder_json, const char *merges_path, lt_tokenizer **out, char *err,
                                 size_t errlen) {
    *out = NULL;
    lt_tokenizer *t = new_tokenizer(err, errlen);
    if (!t) return LT_ERR_NOMEM;
    builder_t b;
    builder_init(&b);
    char *text = NULL;
    size_t len;
    cJSON *j = NULL;
    lt_status st = read_file(encoder_json, &text, &len, err, errlen);
    if (st) goto done;
    if (!(j = parse_json(encoder_json, text, len, err, errlen))) {
        st = LT_ERR_FORMAT;
        goto done;
    }
    free(text);
    text = NULL;
    if (!cJSON_IsObject(j)) {
        st = fail(err, errlen, LT_ERR_FORMAT, "%s: expected a JSON object of token -> id", encoder_json);
        goto done;
    }
    for (const cJSON *it = j->child; it; it = it->next)
        if ((st = add_vocab_token(&b, encoder_json, it, err, errlen))) goto done;
    cJSON_Delete(j);
    j = NULL;
    if ((st = finish_vocab(&b, t, encoder_json, err, errlen))) goto done;
    if ((st = read_file(merges_path, &text, &len, err, errlen))) goto done;
    if ((st = parse_merges_text(&b, t, merges_path, text, len, err, errlen))) goto done;
    set_source(t, encoder_json, merges_path);
    st = lt_tok_compile(t, err, errlen);
done:
    free(text);
    cJSON_Delete(j);
    builder_free(&b);
    if (st) lt_tokenizer_free(t);
    else *out = t;
    return st;
}

/* A tokenizer.json setting that must be absent, null, or one allowed value. */
static int is_null_or_absent(const cJSON *x) { return !x || cJSON_IsNull(x); }

static lt_status check_hf(const char *path, const cJSON *j, char *err, size_t errlen) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!cJSON_IsObject(m))
        return fail(err, errlen, LT_ERR_FORMAT,
                    "%s: no \"model\" object: not a Hugging Face tokenizer.json (for encoder.json + vocab.bpe give "
                    "their folder)",
                    path);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(j, "normalizer");
    if (!is_null_or_absent(norm)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(norm, "type");
        return fail(err, errlen, LT_ERR_FORMAT, "%s: normalizer \"%s\" is not supported (GPT-2's byte-level BPE has none)",
                    path, cJSON_IsString(ty) ? ty->valuestring : "?");
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "ByteLevel"))
        return fail(err, errlen, LT_ERR_FORMAT,
                    "%s: pre_tokenizer \"%s\" is not supported: only GPT-2's ByteLevel pre-tokenizer is", path,
                    cJSON_IsString(ty) ? ty->valuestring : is_null_or_absent(pre) ? "null" : "?");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pre, "add_prefix_space")))
        return fail(err, errlen, LT_ERR_FORMAT, "%s: pre_tokenizer.add_prefix_space true is not supported (GPT-2: false)",
                    path);
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pre, "use_regex")))
        return fail(err, errlen, LT_ERR_FORMAT, "%s: pre_tokenizer.use_regex false is not supported (GPT-2: true)", path);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "decoder");
    const cJSON *dty = cJSON_GetObjectItemCaseSensitive(dec, "type");
    if (!is_null_or_absent(dec) && (!cJSON_IsString(dty) || strcmp(dty->valuestring, "ByteLevel")))
        return fail(err, errlen, LT_ERR_FORMAT, "%s: decoder \"%s\" is not supported: only ByteLevel", path,
                    cJSON_IsString(dty) ? dty->valuestring : "?");
    const cJSON *mty = cJSON_GetObjectItemCaseSensitive(m, "type");
    if (mty && (!cJSON_IsString(mty) || strcmp(mty->valuestring, "BPE")))
        return fail(err, errlen, LT_ERR_FORMAT, "%s: model.type \"%s\" is not supported: only BPE", path,
                    cJSON_IsString(mty) ? mty->valuestring : "?");
    static const char *empty_strings[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(m, empty_strings[k]);
        if (!is_null_or_absent(x) && !(cJSON_IsString(x) && !x->valuestring[0]))
            return fail(err, errlen, LT_ERR_FORMAT, "%s: model.%s is not supported (GPT-2 has none)", path,
                        empty_strings[k]);
    }
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (!is_null_or_absent(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0))
        return fail(err, errlen, LT_ERR_FORMAT, "%s: model.dropout is not supported", path);
    static const char *false_flags[] = {"byte_fallback", "ignore_merges"};
    for (int k = 0; k < 2; k++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, false_flags[k])))
            return fail(err, errlen, LT_ERR_FORMAT, "%s: model.%s true is not supported (GPT-2: false)", path,
                        false_flags[k]);
    return LT_OK;
}

lt_status lt_tokenizer_load_hf(const char *path, lt_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    lt_tokenizer *t = new_tokenizer(err, errlen);
    if (!t) return LT_ERR_NOMEM;
    builder_t b;
    builder_init(&b);
    char *text = NULL, where[1200];
    size_t len;
    cJSON *j = NULL;
    lt_status st = read_file(path, &text, &len, err, errlen);
    if (st) goto done;
    if (!(j = parse_json(path, text, len, err, errlen))) {
        st = LT_ERR_FORMAT;
        goto done;
    }
    free(text);
    text = NULL;
    if (!cJSON_IsObject(j)) {
        st = fail(err, errlen, LT_ERR_FORMAT, "%s: expected a JSON object (a Hugging Face tokenizer.json)", path);
        goto done;
    }
    if ((st = check_hf(path, j, err, errlen))) goto done;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    if (!cJSON_IsObject(vocab)) {
        st = fail(err, errlen, LT_ERR_FORMAT, "%s: model.vocab is missing or not an object of token -> id", path);
        goto done;
    }
    snprintf(where, sizeof where, "%s: model.vocab", path);
    for (const cJSON *it = vocab->child; it; it = it->next)
        if ((st = add_vocab_token(&b, where, it, err, errlen))) goto done;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    size_t ai = 0;
    for (const cJSON *it = cJSON_IsArray(added) ? added->child : NULL; it; it = it->next, ai++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble != floor(id->valuedouble) || id->valuedouble < 0 ||
            id->valuedouble >= LT_TOK_MAX_VOCAB || !cJSON_IsString(content) || !content->valuestring[0]) {
            st = fail(err, errlen, LT_ERR_FORMAT, "%s: added_tokens[%zu]: needs an integer \"id\" and a non-empty \"content\"",
                      path, ai);
            goto done;
        }
        /* added tokens are matched as written, not through the byte table: their bytes are their content */
        if ((st = add_ent(&b, (int32_t)id->valuedouble, content->valuestring, strlen(content->valuestring), 1, path, err,
                          errlen)))
            goto done;
    }
    snprintf(where, sizeof where, "%s: model.vocab", path);
    if ((st = finish_vocab(&b, t, where, err, errlen))) goto done;
    if (!cJSON_IsArray(merges) || !merges->child) {
        st = fail(err, errlen, LT_ERR_FORMAT, "%s: model.merges is missing or empty", path);
        goto done;
    }
    if ((st = alloc_merges(t, (size_t)cJSON_GetArraySize(merges), path, err, errlen))) goto done;
    size_t mi = 0;
    for (const cJSON *it = merges->child; it; it = it->next, mi++) {
        snprintf(where, sizeof where, "%s: model.merges[%zu]", path, mi);
        const char *l = NULL, *r = NULL;
        size_t ln = 0, rn = 0;
        if (cJSON_IsString(it)) { /* "a b" (tokenizers before 0.20) */
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (sp && sp > s && sp[1] && !strchr(sp + 1, ' ')) l = s, ln = (size_t)(sp - s), r = sp + 1, rn = strlen(r);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) { /* ["a", "b"] (tokenizers 0.20 and later) */
            l = it->child->valuestring, ln = strlen(l), r = it->child->next->valuestring, rn = strlen(r);
        }
        if (!l || !ln || !rn) {
            st = fail(err, errlen, LT_ERR_FORMAT, "%s: expected \"left right\" or [\"left\", \"right\"]", where);
            goto done;
        }
        if ((st = add_merge(&b, t, l, ln, r, rn, where, err, errlen))) goto done;
    }
    set_source(t, path, NULL);
    st = lt_tok_compile(t, err, errlen);
done:
    free(text);
    cJSON_Delete(j);
    builder_free(&b);
    if (st) lt_tokenizer_free(t);
    else *out = t;
    return st;
}

/* ---- finding tokenizer files ---- */

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *PAIRS[][2] = {{"encoder.json", "vocab.bpe"}, {"vocab.json", "merges.txt"}, {"tokenizer.json", NULL}};

/* which of PAIRS dir holds (index), or -1 */
static int which_files(const char *dir, char *a, char *b, size_t cap) {
    for (int k = 0; k < 3; k++) {
        snprintf(a, cap, "%s/%s", dir, PAIRS[k][0]);
        if (PAIRS[k][1]) snprintf(b, cap, "%s/%s", dir, PAIRS[k][1]);
        if (is_file(a) && (!PAIRS[k][1] || is_file(b))) return k;
    }
    return -1;
}

int lt_tokenizer_present(const char *dir) {
    char a[1200], b[1200];
    return dir && *dir && is_dir(dir) && which_files(dir, a, b, sizeof a) >= 0;
}

static lt_status load_dir(const char *dir, lt_tokenizer **out, char *err, size_t errlen) {
    char a[1200], b[1200];
    int k = which_files(dir, a, b, sizeof a);
    if (k < 0)
        return fail(err, errlen, LT_ERR_IO,
                    "%s: no tokenizer here (expected encoder.json + vocab.bpe, vocab.json + merges.txt, or tokenizer.json)",
                    dir);
    return PAIRS[k][1] ? lt_tokenizer_load_gpt2(a, b, out, err, errlen) : lt_tokenizer_load_hf(a, out, err, errlen);
}

lt_status lt_tokenizer_load(const char *path, lt_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    if (!path || !*path) return fail(err, errlen, LT_ERR_ARG, "no tokenizer path given");
    if (is_dir(path)) return load_dir(path, out, err, errlen);
    if (is_file(path)) return lt_tokenizer_load_hf(path, out, err, errlen);
    if (strcmp(path, "gpt2") && strcmp(path, "openai-community/gpt2"))
        return fail(err, errlen, LT_ERR_IO, "%s: no such file or folder (give a folder with tokenizer files, or gpt2)",
                    path);
    /* the GPT-2 files that ship with leantrain: next to a build tree's or an install's program, or here */
    char cand[4][1200], exe[1024];
    int nc = 0;
    const char *env = getenv("LEANTRAIN_DATA");
    if (env && *env) snprintf(cand[nc++], sizeof cand[0], "%s/gpt2", env);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand[nc++], sizeof cand[0], "%s/../data/gpt2", exe);
        snprintf(cand[nc++], sizeof cand[0], "%s/../share/leantrain/gpt2", exe);
    }
    snprintf(cand[nc++], sizeof cand[0], "data/gpt2");
    for (int k = 0; k < nc; k++)
        if (lt_tokenizer_present(cand[k])) return load_dir(cand[k], out, err, errlen);
    return fail(err, errlen, LT_ERR_IO,
                "gpt2: the GPT-2 tokenizer files were not found (looked in %s%s<program>/../data/gpt2, "
                "<program>/../share/leantrain/gpt2 and ./data/gpt2); give --tokenizer_name_or_path DIR",
                env && *env ? env : "", env && *env ? "/gpt2, " : "");
}

void lt_tokenizer_free(lt_tokenizer *t) {
    if (!t) return;
    free(t->tok_off);
    free(t->tok_present);
    free(t->tok_bytes);
    free(t->bytes_tab);
    free(t->merges);
    free(t->merge_list);
    if (t->re) pcre2_code_free(t->re);
    if (t->split_re) pcre2_code_free(t->split_re);
    free(t);
}

/* ---- facts, decoding, saving ---- */

size_t lt_tokenizer_memory(const lt_tokenizer *t) {
    if (!t) return 0;
    size_t n = sizeof *t + t->held;
    const pcre2_code *re[2] = {t->re, t->split_re};
    const int jit[2] = {t->re_jit, t->split_jit};
    for (int k = 0; k < 2; k++) {
        size_t sz = 0;
        if (re[k] && pcre2_pattern_info(re[k], PCRE2_INFO_SIZE, &sz) == 0) n += sz;
        sz = 0;
        if (re[k] && jit[k] && pcre2_pattern_info(re[k], PCRE2_INFO_JITSIZE, &sz) == 0) n += sz;
    }
    return n;
}

size_t lt_tokenizer_vocab_size(const lt_tokenizer *t) { return t->n_vocab; }
int32_t lt_tokenizer_eot(const lt_tokenizer *t) { return t->eot; }
const char *lt_tokenizer_source(const lt_tokenizer *t) { return t->source; }

const char *lt_tokenizer_token_bytes(const lt_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_vocab || !t->tok_present[id]) return NULL;
    *len = t->tok_off[id + 1] - t->tok_off[id];
    return t->tok_bytes + t->tok_off[id];
}

lt_status lt_tokenizer_decode(const lt_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len, char *err,
                              size_t errlen) {
    *text = NULL;
    *len = 0;
    size_t total = 0, l;
    for (size_t i = 0; i < n; i++) {
        if (!lt_tokenizer_token_bytes(t, ids[i], &l))
            return fail(err, errlen, LT_ERR_ARG, "id %d (position %zu) is not in the vocabulary (0..%zu)", ids[i], i,
                        t->n_vocab - 1);
        total += l;
    }
    char *out = malloc(total + 1);
    if (!out) return fail(err, errlen, LT_ERR_NOMEM, "out of memory decoding %zu tokens", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = lt_tokenizer_token_bytes(t, ids[i], &l);
        memcpy(out + k, s, l);
        k += l;
    }
    out[k] = 0;
    *text = out;
    *len = k;
    return LT_OK;
}

/* token id's bytes written through the byte table (the files' spelling), into a malloc'd string */
static char *spelled(const lt_tokenizer *t, const uint32_t b2u[256], int32_t id) {
    size_t n = t->tok_off[id + 1] - t->tok_off[id];
    char *s = malloc(2 * n + 1), *p = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = b2u[(unsigned char)t->tok_bytes[t->tok_off[id] + i]];
        if (cp < 0x80) *p++ = (char)cp;
        else *p++ = (char)(0xc0 | (cp >> 6)), *p++ = (char)(0x80 | (cp & 0x3f));
    }
    *p = 0;
    return s;
}

static lt_status write_atomic(const char *path, const char *text, size_t n, char *err, size_t errlen) {
    lt_atomic_file *af = NULL;
    lt_status st = lt_atomic_open(path, &af, err, errlen);
    if (st == LT_OK) st = lt_atomic_write(af, text, n, err, errlen);
    if (st == LT_OK) return lt_atomic_commit(af, err, errlen);
    if (af) lt_atomic_abort(af);
    return st;
}

lt_status lt_tokenizer_save(const lt_tokenizer *t, const char *dir, char *err, size_t errlen) {
    uint32_t b2u[256];
    lt_tok_byte_unicode(b2u);
    char path[1200];
    cJSON *vocab = cJSON_CreateObject();
    if (!vocab) return fail(err, errlen, LT_ERR_NOMEM, "out of memory");
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (!t->tok_present[id]) continue;
        char *s = spelled(t, b2u, (int32_t)id);
        cJSON *num = cJSON_CreateNumber((double)id);
        if (!s || !num) {
            free(s);
            cJSON_Delete(num);
            cJSON_Delete(vocab);
            return fail(err, errlen, LT_ERR_NOMEM, "out of memory");
        }
        cJSON_AddItemToObject(vocab, s, num);
        free(s);
    }
    char *json = cJSON_PrintUnformatted(vocab);
    cJSON_Delete(vocab);
    if (!json) return fail(err, errlen, LT_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    lt_status st = write_atomic(path, json, strlen(json), err, errlen);
    free(json);
    if (st) return st;
    /* merges.txt: each line at most two spelled tokens (2 bytes per byte) */
    size_t cap = 16, k;
    for (size_t r = 0; r < t->n_merges; r++)
        for (int s = 0; s < 2; s++) cap += 2 * (t->tok_off[t->merge_list[r][s] + 1] - t->tok_off[t->merge_list[r][s]]) + 1;
    char *txt = malloc(cap);
    if (!txt) return fail(err, errlen, LT_ERR_NOMEM, "out of memory");
    k = (size_t)sprintf(txt, "#version: 0.2\n");
    for (size_t r = 0; r < t->n_merges && st == LT_OK; r++)
        for (int s = 0; s < 2; s++) {
            char *w = spelled(t, b2u, t->merge_list[r][s]);
            if (!w) {
                st = fail(err, errlen, LT_ERR_NOMEM, "out of memory");
                break;
            }
            size_t wl = strlen(w);
            memcpy(txt + k, w, wl);
            k += wl;
            txt[k++] = s ? '\n' : ' ';
            free(w);
        }
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    if (st == LT_OK) st = write_atomic(path, txt, k, err, errlen);
    free(txt);
    return st;
}
