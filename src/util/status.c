/* Names of status codes. */
#include "leantrain/status.h"

const char *lt_status_str(lt_status s) {
    switch (s) {
    case LT_OK: return "ok";
    case LT_ERR_ARG: return "bad argument";
    case LT_ERR_IO: return "i/o error";
    case LT_ERR_FORMAT: return "invalid file contents";
    case LT_ERR_NOMEM: return "out of memory";
    case LT_ERR_STATE: return "invalid state";
    case LT_ERR_DEVICE: return "device error";
    }
    return "unknown status";
}
