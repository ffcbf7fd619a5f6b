/* leantrain: status codes shared by every public function that can fail.
 *
 * Functions return LT_OK (0) on success and a negative code otherwise; the
 * human-readable message (what went wrong, which file/flag/tensor, what to do)
 * is written into an error buffer or kept on the object that failed. */
#ifndef LEANTRAIN_STATUS_H
#define LEANTRAIN_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lt_status {
    LT_OK = 0,
    LT_ERR_ARG = -1,    /* a bad argument: unknown name, malformed value, out of range */
    LT_ERR_IO = -2,     /* a file could not be opened, read, written or renamed */
    LT_ERR_FORMAT = -3, /* a file was read but its contents are invalid */
    LT_ERR_NOMEM = -4,  /* an allocation failed */
    LT_ERR_STATE = -5,  /* the call is not valid in the object's current state */
    LT_ERR_DEVICE = -6, /* CUDA: no device, no CUDA support in this build, or a CUDA error */
} lt_status;

/* Returns a short constant name for a status code ("ok", "bad argument", ...). */
const char *lt_status_str(lt_status s);

#ifdef __cplusplus
}
#endif
#endif
