/* Optional compiled fast paths for erlbridge.term's codec (decoder.py, encoder.py).
 *
 * The pure-Python modules stay the reference: this module only takes the common tags
 * and types, and hands everything else back to them. Any error or odd input here
 * raises the private exception Fallback, and the Python entry point then re-runs the
 * pure codec on the same input, so error messages, offsets and every rare case stay
 * exactly the Python ones (errors are rare: re-running costs nothing on the happy
 * path).
 *
 * decode(data, pos, max_depth) -> (term, end): one term whose version byte is at pos.
 *   Atoms go through the Python decoder's own caches (same objects, same bound: a
 *   miss calls the Python atom function, which validates and inserts); tags not
 *   handled here call the Python tag function from the dispatch table.
 * encode(term) -> bytes: the plain term_to_binary form with the leading 131. Atoms go
 *   through the Python encoder's cache; types not handled here are encoded by a
 *   Python callback whose bytes are appended.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Deeper than this the Python codec takes over (bounds the C stack whatever the
 * recursion limit); Py_EnterRecursiveCall bounds it by the recursion limit too. */
#define MAX_C_LEVEL 2000

static PyObject *Fallback;

/* -- configuration (set once by decoder.py / encoder.py) ------------------------- */

static PyTypeObject *atom_type, *string_type, *pid_type, *ref_type;
static Py_ssize_t off_text, off_pid_node, off_pid_id, off_pid_serial, off_pid_creation;
static Py_ssize_t off_ref_node, off_ref_creation, off_ref_ids;
static PyObject *utf8_cache, *latin1_cache, *utf8_atom_fn, *latin1_atom_fn;
static PyObject *tag_table, *improper_list;
static long long depth_limit;
static int decoder_ready;

static PyObject *atom_bytes_cache, *atom_bytes_fn, *encode_piece_fn;
static int encoder_ready;

/* A small front for the atom caches, keyed by the raw bytes so that a hit needs no
 * bytes object: it only holds (key, value) pairs found in the Python dicts, so the
 * values are the dicts' objects, and it has a fixed size (the dicts stay the bound). */
#define FRONT_SIZE 4096
typedef struct {
    PyObject *key; /* bytes equal to the dict's key */
    PyObject *value;
} FrontSlot;
static FrontSlot front[2][FRONT_SIZE];


static PyObject *
fallback(void)
{
    PyErr_SetNone(Fallback);
    return NULL;
}

/* The offset of a __slots__ member (a member descriptor of an object slot). */
static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name);
    if (descr == NULL || Py_TYPE(descr) != &PyMemberDescr_Type) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", type->tp_name, name);
        return -1;
    }
    *offset = member->offset;
    return 0;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static int
set_type(PyObject *obj, PyTypeObject **target)
{
    if (!PyType_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "expected a class");
        return -1;
    }
    Py_INCREF(obj);
    Py_XSETREF(*target, (PyTypeObject *)obj);
    return 0;
}

static void
set_obj(PyObject *obj, PyObject **target)
{
    Py_INCREF(obj);
    Py_XSETREF(*target, obj);
}

/* The model types both directions build or read, and their slots' offsets. */
static int
set_model_types(PyObject *atom, PyObject *string, PyObject *pid, PyObject *ref)
{
    if (set_type(atom, &atom_type) || set_type(string, &string_type) ||
        set_type(pid, &pid_type) || set_type(ref, &ref_type))
        return -1;
    if (slot_offset(string_type, "_text", &off_text) ||
        slot_offset(pid_type, "node", &off_pid_node) ||
        slot_offset(pid_type, "id", &off_pid_id) ||
        slot_offset(pid_type, "serial", &off_pid_serial) ||
        slot_offset(pid_type, "creation", &off_pid_creation) ||
        slot_offset(ref_type, "node", &off_ref_node) ||
        slot_offset(ref_type, "creation", &off_ref_creation) ||
        slot_offset(ref_type, "ids", &off_ref_ids))
        return -1;
    return 0;
}

static PyObject *
configure_decoder(PyObject *self, PyObject *args)
{
    PyObject *atom, *string, *pid, *ref, *improper, *utf8, *latin1, *utf8_fn, *latin1_fn;
    PyObject *table;
    long long limit;
    if (!PyArg_ParseTuple(args, "OOOOOO!O!OOO!L", &atom, &string, &pid, &ref, &improper,
                          &PyDict_Type, &utf8, &PyDict_Type, &latin1, &utf8_fn, &latin1_fn,
                          &PyList_Type, &table, &limit))
        return NULL;
    if (PyList_GET_SIZE(table) != 256) {
        PyErr_SetString(PyExc_ValueError, "the tag table needs 256 entries");
        return NULL;
    }
    if (set_model_types(atom, string, pid, ref))
        return NULL;
    for (int e = 0; e < 2; e++) {
        for (int i = 0; i < FRONT_SIZE; i++) {
            Py_CLEAR(front[e][i].key);
            Py_CLEAR(front[e][i].value);
        }
    }
    set_obj(improper, &improper_list);
    set_obj(utf8, &utf8_cache);
    set_obj(latin1, &latin1_cache);
    set_obj(utf8_fn, &utf8_atom_fn);
    set_obj(latin1_fn, &latin1_atom_fn);
    set_obj(table, &tag_table);
    depth_limit = limit;
    decoder_ready = 1;
    Py_RETURN_NONE;
}

static PyObject *
configure_encoder(PyObject *self, PyObject *args)
{
    PyObject *atom, *string, *pid, *ref, *cache, *atom_fn, *piece_fn;
    if (!PyArg_ParseTuple(args, "OOOOO!OO", &atom, &string, &pid, &ref, &PyDict_Type, &cache,
                          &atom_fn, &piece_fn))
        return NULL;
    if (set_model_types(atom, string, pid, ref))
        return NULL;
    set_obj(cache, &atom_bytes_cache);
    set_obj(atom_fn, &atom_bytes_fn);
    set_obj(piece_fn, &encode_piece_fn);
    encoder_ready = 1;
    Py_RETURN_NONE;
}

/* -- decoding ---------------------------------------------------------------------- */

typedef struct {
    const unsigned char *buf;
    Py_ssize_t len;
    PyObject *data;       /* the buffer object, for the Python callbacks */
    long long max_depth;  /* elements deeper than this fail (as in Python) */
} Dec;

static inline uint32_t
rd16(const unsigned char *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

static inline uint32_t
rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
rd64(const unsigned char *p)
{
    return ((uint64_t)rd32(p) << 32) | rd32(p + 4);
}

static inline uint32_t
front_hash(const unsigned char *p, Py_ssize_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* An atom whose raw bytes are buf[start:end], through the Python decoder's cache. */
static PyObject *
dec_atom(Dec *d, Py_ssize_t start, Py_ssize_t end, int utf8)
{
    if (end > d->len)
        return fallback();
    const unsigned char *raw = d->buf + start;
    Py_ssize_t n = end - start;
    FrontSlot *slot = &front[utf8][front_hash(raw, n) & (FRONT_SIZE - 1)];
    if (slot->key != NULL && PyBytes_GET_SIZE(slot->key) == n &&
        memcmp(PyBytes_AS_STRING(slot->key), raw, n) == 0) {
        Py_INCREF(slot->value);
        return slot->value;
    }
    PyObject *key = PyBytes_FromStringAndSize((const char *)raw, n);
    if (key == NULL)
        return NULL;
    PyObject *value = PyDict_GetItemWithError(utf8 ? utf8_cache : latin1_cache, key);
    if (value != NULL) {
        Py_INCREF(value);
        if (slot->key == NULL) { /* first come, kept: no churn when atoms collide */
            Py_INCREF(value);
            slot->value = value;
            slot->key = key; /* the key's reference moves into the slot */
        }
        else
            Py_DECREF(key);
        return value;
    }
    Py_DECREF(key);
    if (PyErr_Occurred())
        return NULL;
    /* a miss: the Python function validates, builds the Atom and caches it */
    return PyObject_CallFunction(utf8 ? utf8_atom_fn : latin1_atom_fn, "Onn", d->data, start,
                                 end);
}

/* The atom field of a pid or reference at *ppos (tag first). NULL with no error set
 * means "true"/"false": the Python tag function makes those atoms. */
static PyObject *
dec_node_atom(Dec *d, Py_ssize_t *ppos, int *is_bool)
{
    Py_ssize_t pos = *ppos, start, n;
    const unsigned char *b = d->buf;
    int utf8;
    if (pos + 2 > d->len)
        return fallback();
    switch (b[pos]) {
    case 119:
    case 115:
        n = b[pos + 1];
        start = pos + 2;
        utf8 = b[pos] == 119;
        break;
    case 118:
    case 100:
        if (pos + 3 > d->len)
            return fallback();
        n = rd16(b + pos + 1);
        if (b[pos] == 100 && n > 255)
            return fallback();
        start = pos + 3;
        utf8 = b[pos] == 118;
        break;
    default:
        return fallback();
    }
    PyObject *atom = dec_atom(d, start, start + n, utf8);
    if (atom == NULL)
        return NULL;
    if (atom == Py_True || atom == Py_False) {
        Py_DECREF(atom);
        *is_bool = 1;
        return NULL;
    }
    *ppos = start + n;
    return atom;
}

/* The Python tag function for tag at pos - 1, called at Python depth (level). */
static PyObject *
dec_callback(Dec *d, unsigned char tag, Py_ssize_t *ppos, long long level)
{
    PyObject *fn = PyList_GET_ITEM(tag_table, tag);
    if (fn == Py_None)
        return fallback();
    long long depth = depth_limit - d->max_depth + level;
    PyObject *res = PyObject_CallFunction(fn, "OnL", d->data, *ppos, depth);
    if (res == NULL)
        return NULL;
    if (!PyTuple_CheckExact(res) || PyTuple_GET_SIZE(res) != 2) {
        Py_DECREF(res);
        return fallback();
    }
    Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1));
    if (end < *ppos || end > d->len) {
        Py_DECREF(res);
        return PyErr_Occurred() ? NULL : fallback();
    }
    PyObject *value = PyTuple_GET_ITEM(res, 0);
    Py_INCREF(value);
    Py_DECREF(res);
    *ppos = end;
    return value;
}

static PyObject *dec_term(Dec *d, Py_ssize_t *ppos, long long level);

/* Checks before the n elements of a container at `level` (elements one deeper). */
static int
container_ok(Dec *d, Py_ssize_t pos, uint64_t n, long long level)
{
    if (level + 1 > d->max_depth || level + 1 > MAX_C_LEVEL)
        return 0;
    return n <= (uint64_t)(d->len - pos); /* every term takes at least one byte */
}

static PyObject *
dec_small_big(Dec *d, Py_ssize_t *ppos)
{
    Py_ssize_t pos = *ppos;
    const unsigned char *b = d->buf;
    Py_ssize_t n = b[pos];
    int negative = b[pos + 1] != 0;
    if (n > d->len - pos - 2)
        return fallback();
    uint64_t u = 0;
    for (Py_ssize_t i = n - 1; i >= 0; i--)
        u = (u << 8) | b[pos + 2 + i];
    *ppos = pos + 2 + n;
    if (!negative)
        return PyLong_FromUnsignedLongLong(u);
    if (u <= (uint64_t)INT64_MAX)
        return PyLong_FromLongLong(-(long long)u);
    PyObject *magnitude = PyLong_FromUnsignedLongLong(u);
    if (magnitude == NULL)
        return NULL;
    PyObject *value = PyNumber_Negative(magnitude);
    Py_DECREF(magnitude);
    return value;
}

static PyObject *
dec_list(Dec *d, Py_ssize_t *ppos, long long level)
{
    Py_ssize_t pos = *ppos;
    if (pos + 4 > d->len)
        return fallback();
    uint32_t n = rd32(d->buf + pos);
    pos += 4;
    if (!container_ok(d, pos, n, level))
        return fallback();
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        PyObject *item = dec_term(d, &pos, level + 1);
        if (item == NULL)
            goto error;
        PyList_SET_ITEM(list, i, item);
    }
    if (pos >= d->len)
        goto fail;
    if (d->buf[pos] == 106) {
        *ppos = pos + 1;
        return list;
    }
    PyObject *tail = dec_term(d, &pos, level + 1);
    if (tail == NULL)
        goto error;
    if (n == 0) { /* just the tail, as binary_to_term reads it */
        Py_DECREF(list);
        *ppos = pos;
        return tail;
    }
    if (PyList_Check(tail) || Py_TYPE(tail) == string_type) {
        Py_DECREF(tail); /* a non-canonical tail: Python normalises it */
        goto fail;
    }
    PyObject *elements = PyList_AsTuple(list);
    Py_DECREF(list);
    if (elements == NULL) {
        Py_DECREF(tail);
        return NULL;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(improper_list, elements, tail, NULL);
    Py_DECREF(elements);
    Py_DECREF(tail);
    *ppos = pos;
    return result;
fail:
    fallback();
error:
    Py_DECREF(list);
    return NULL;
}

static PyObject *
dec_map(Dec *d, Py_ssize_t *ppos, long long level)
{
    Py_ssize_t pos = *ppos;
    if (pos + 4 > d->len)
        return fallback();
    uint32_t n = rd32(d->buf + pos);
    pos += 4;
    if (!container_ok(d, pos, 2 * (uint64_t)n, level))
        return fallback();
    PyObject *map = PyDict_New();
    if (map == NULL)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        PyObject *key = dec_term(d, &pos, level + 1);
        if (key == NULL)
            goto error;
        PyObject *value = dec_term(d, &pos, level + 1);
        if (value == NULL) {
            Py_DECREF(key);
            goto error;
        }
        /* an unhashable key fails here: Python freezes it */
        int rc = PyDict_SetItem(map, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0)
            goto error;
    }
    /* keys equal in Python (1, 1.0, true) or repeated: Python decides */
    if (PyDict_GET_SIZE(map) != (Py_ssize_t)n) {
        fallback();
        goto error;
    }
    *ppos = pos;
    return map;
error:
    Py_DECREF(map);
    return NULL;
}

static PyObject *
dec_new_pid(Dec *d, Py_ssize_t *ppos, long long level)
{
    Py_ssize_t pos = *ppos;
    int is_bool = 0;
    PyObject *node = dec_node_atom(d, &pos, &is_bool);
    if (node == NULL)
        return is_bool ? dec_callback(d, 88, ppos, level) : NULL;
    if (pos + 12 > d->len) {
        Py_DECREF(node);
        return fallback();
    }
    const unsigned char *b = d->buf + pos;
    PyObject *pid = pid_type->tp_alloc(pid_type, 0);
    if (pid == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    SLOT(pid, off_pid_node) = node;
    if ((SLOT(pid, off_pid_id) = PyLong_FromUnsignedLong(rd32(b))) == NULL ||
        (SLOT(pid, off_pid_serial) = PyLong_FromUnsignedLong(rd32(b + 4))) == NULL ||
        (SLOT(pid, off_pid_creation) = PyLong_FromUnsignedLong(rd32(b + 8))) == NULL) {
        Py_DECREF(pid);
        return NULL;
    }
    *ppos = pos + 12;
    return pid;
}

static PyObject *
dec_newer_ref(Dec *d, Py_ssize_t *ppos, long long level)
{
    Py_ssize_t pos = *ppos;
    if (pos + 2 > d->len)
        return fallback();
    uint32_t n = rd16(d->buf + pos);
    if (n < 1 || n > 5)
        return fallback();
    pos += 2;
    int is_bool = 0;
    PyObject *node = dec_node_atom(d, &pos, &is_bool);
    if (node == NULL)
        return is_bool ? dec_callback(d, 90, ppos, level) : NULL;
    if (pos + 4 + 4 * (Py_ssize_t)n > d->len) {
        Py_DECREF(node);
        return fallback();
    }
    const unsigned char *b = d->buf + pos;
    PyObject *ref = ref_type->tp_alloc(ref_type, 0);
    if (ref == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    SLOT(ref, off_ref_node) = node;
    if ((SLOT(ref, off_ref_creation) = PyLong_FromUnsignedLong(rd32(b))) == NULL ||
        (SLOT(ref, off_ref_ids) = PyTuple_New(n)) == NULL) {
        Py_DECREF(ref);
        return NULL;
    }
    PyObject *ids = SLOT(ref, off_ref_ids);
    for (uint32_t i = 0; i < n; i++) {
        PyObject *word = PyLong_FromUnsignedLong(rd32(b + 4 + 4 * i));
        if (word == NULL) {
            Py_DECREF(ref);
            return NULL;
        }
        PyTuple_SET_ITEM(ids, i, word);
    }
    *ppos = pos + 4 + 4 * n;
    return ref;
}

static PyObject *
dec_term(Dec *d, Py_ssize_t *ppos, long long level)
{
    Py_ssize_t pos = *ppos, n, start;
    const unsigned char *b = d->buf;
    Py_ssize_t len = d->len;
    PyObject *value;
    if (pos >= len)
        return fallback();
    unsigned char tag = b[pos++];
    switch (tag) {
    case 97: /* SMALL_INTEGER_EXT */
        if (pos + 1 > len)
            return fallback();
        *ppos = pos + 1;
        return PyLong_FromLong(b[pos]);
    case 98: /* INTEGER_EXT */
        if (pos + 4 > len)
            return fallback();
        *ppos = pos + 4;
        return PyLong_FromLong((int32_t)rd32(b + pos));
    case 70: { /* NEW_FLOAT_EXT */
        if (pos + 8 > len)
            return fallback();
        uint64_t bits = rd64(b + pos);
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x))
            return fallback();
        *ppos = pos + 8;
        return PyFloat_FromDouble(x);
    }
    case 110: /* SMALL_BIG_EXT */
        if (pos + 2 > len)
            return fallback();
        if (b[pos] > 8)
            break;
        value = dec_small_big(d, &pos);
        *ppos = pos;
        return value;
    case 119: /* SMALL_ATOM_UTF8_EXT */
    case 115: /* SMALL_ATOM_EXT */
        if (pos + 1 > len)
            return fallback();
        n = b[pos];
        start = pos + 1;
        value = dec_atom(d, start, start + n, tag == 119);
        if (value != NULL)
            *ppos = start + n;
        return value;
    case 118: /* ATOM_UTF8_EXT */
    case 100: /* ATOM_EXT */
        if (pos + 2 > len)
            return fallback();
        n = rd16(b + pos);
        if (tag == 100 && n > 255)
            return fallback();
        start = pos + 2;
        value = dec_atom(d, start, start + n, tag == 118);
        if (value != NULL)
            *ppos = start + n;
        return value;
    case 104: /* SMALL_TUPLE_EXT */
    case 105: /* LARGE_TUPLE_EXT */ {
        if (tag == 104) {
            if (pos + 1 > len)
                return fallback();
            n = b[pos];
            pos += 1;
        }
        else {
            if (pos + 4 > len)
                return fallback();
            n = rd32(b + pos);
            pos += 4;
        }
        if (!container_ok(d, pos, n, level))
            return fallback();
        if (Py_EnterRecursiveCall(" in erlbridge term decode"))
            return NULL;
        PyObject *tuple = PyTuple_New(n);
        if (tuple != NULL) {
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = dec_term(d, &pos, level + 1);
                if (item == NULL) {
                    Py_CLEAR(tuple);
                    break;
                }
                PyTuple_SET_ITEM(tuple, i, item);
            }
        }
        Py_LeaveRecursiveCall();
        if (tuple != NULL)
            *ppos = pos;
        return tuple;
    }
    case 106: /* NIL_EXT */
        *ppos = pos;
        return PyList_New(0);
    case 107: { /* STRING_EXT */
        if (pos + 2 > len)
            return fallback();
        n = rd16(b + pos);
        start = pos + 2;
        if (start + n > len)
            return fallback();
        PyObject *text = PyUnicode_DecodeLatin1((const char *)b + start, n, NULL);
        if (text == NULL)
            return NULL;
        value = string_type->tp_alloc(string_type, 0);
        if (value == NULL) {
            Py_DECREF(text);
            return NULL;
        }
        SLOT(value, off_text) = text;
        *ppos = start + n;
        return value;
    }
    case 108: /* LIST_EXT */
        if (Py_EnterRecursiveCall(" in erlbridge term decode"))
            return NULL;
        value = dec_list(d, &pos, level);
        Py_LeaveRecursiveCall();
        if (value != NULL)
            *ppos = pos;
        return value;
    case 116: /* MAP_EXT */
        if (Py_EnterRecursiveCall(" in erlbridge term decode"))
            return NULL;
        value = dec_map(d, &pos, level);
        Py_LeaveRecursiveCall();
        if (value != NULL)
            *ppos = pos;
        return value;
    case 109: /* BINARY_EXT */
        if (pos + 4 > len)
            return fallback();
        n = rd32(b + pos);
        start = pos + 4;
        if (n > len - start)
            return fallback();
        *ppos = start + n;
        return PyBytes_FromStringAndSize((const char *)b + start, n);
    case 88: /* NEW_PID_EXT */
        value = dec_new_pid(d, &pos, level);
        if (value != NULL)
            *ppos = pos;
        return value;
    case 90: /* NEWER_REFERENCE_EXT */
        value = dec_newer_ref(d, &pos, level);
        if (value != NULL)
            *ppos = pos;
        return value;
    default:
        break;
    }
    /* every other tag (and big integers): the Python tag function */
    value = dec_callback(d, tag, &pos, level);
    if (value != NULL)
        *ppos = pos;
    return value;
}

static PyObject *
speedups_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode(data, pos, max_depth)");
        return NULL;
    }
    if (!decoder_ready)
        return fallback();
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    int overflow = 0;
    long long max_depth = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (PyErr_Occurred() || overflow || max_depth > ((long long)1 << 60) ||
        max_depth < -((long long)1 << 60)) {
        PyErr_Clear();
        return fallback();
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return fallback();
    }
    Dec d = {(const unsigned char *)view.buf, view.len, args[0], max_depth};
    PyObject *term = NULL, *result = NULL;
    if (pos >= 0 && pos < d.len - 1 && d.buf[pos] == 131) {
        Py_ssize_t end = pos + 1;
        term = dec_term(&d, &end, 0);
        if (term != NULL) {
            result = Py_BuildValue("(Nn)", term, end);
        }
    }
    PyBuffer_Release(&view);
    if (result == NULL) {
        /* whatever went wrong, the pure decoder says it exactly */
        PyErr_Clear();
        return fallback();
    }
    return result;
}

/* -- encoding ---------------------------------------------------------------------- */

typedef struct {
    PyObject *bytes; /* the output, resized as it grows */
    char *buf;
    Py_ssize_t len, cap;
    int level; /* containers we are inside */
} Out;

static int
reserve(Out *o, Py_ssize_t extra)
{
    if (extra <= o->cap - o->len)
        return 0;
    if (extra > PY_SSIZE_T_MAX / 2 - o->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = o->cap * 2;
    if (cap < o->len + extra)
        cap = o->len + extra;
    if (_PyBytes_Resize(&o->bytes, cap) < 0)
        return -1;
    o->buf = PyBytes_AS_STRING(o->bytes);
    o->cap = cap;
    return 0;
}

static inline void
put8(Out *o, unsigned v)
{
    o->buf[o->len++] = (char)v;
}

static inline void
put16(Out *o, uint32_t v)
{
    o->buf[o->len++] = (char)(v >> 8);
    o->buf[o->len++] = (char)v;
}

static inline void
put32(Out *o, uint32_t v)
{
    put16(o, v >> 16);
    put16(o, v & 0xFFFF);
}

static int
put_raw(Out *o, const char *data, Py_ssize_t n)
{
    if (reserve(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, data, n);
    o->len += n;
    return 0;
}

/* Appends the bytes-like result of a Python call (a new reference, or NULL). */
static int
put_result(Out *o, PyObject *res)
{
    if (res == NULL)
        return -1;
    Py_buffer view;
    if (PyObject_GetBuffer(res, &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(res);
        return -1;
    }
    int rc = put_raw(o, view.buf, view.len);
    PyBuffer_Release(&view);
    Py_DECREF(res);
    return rc;
}

/* Appends the encoding of an atom (any str), through the Python encoder's cache. */
static int
put_atom(Out *o, PyObject *name)
{
    PyObject *raw = PyDict_GetItemWithError(atom_bytes_cache, name);
    if (raw != NULL && PyBytes_CheckExact(raw))
        return put_raw(o, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    if (PyErr_Occurred())
        return -1;
    return put_result(o, PyObject_CallOneArg(atom_bytes_fn, name));
}

/* The value of an exact int in 0..2**32-1, or -1. */
static long long
u32_value(PyObject *obj)
{
    if (obj == NULL || !PyLong_CheckExact(obj))
        return -1;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || v < 0 || v > 0xFFFFFFFFLL) {
        PyErr_Clear();
        return -1;
    }
    return v;
}

static int
is_str(PyObject *obj)
{
    return obj != NULL && (PyUnicode_CheckExact(obj) || Py_TYPE(obj) == atom_type);
}

static int enc(Out *o, PyObject *obj);

/* Around the items of a container: a cyclic or very deep term ends here (and the
 * Python encoder then reports it). */
static int
enter(Out *o)
{
    if (o->level >= MAX_C_LEVEL || Py_EnterRecursiveCall(" in erlbridge term encode"))
        return -1;
    o->level++;
    return 0;
}

static void
leave(Out *o)
{
    o->level--;
    Py_LeaveRecursiveCall();
}

/* 0: done, 1: not a form handled here (the Python encoder takes it), -1: error. */
static int
enc_int(Out *o, PyObject *obj)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow)
        return 1;
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (reserve(o, 11) < 0)
        return -1;
    if (v >= 0 && v <= 255) {
        put8(o, 97);
        put8(o, (unsigned)v);
    }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        put8(o, 98);
        put32(o, (uint32_t)v);
    }
    else {
        uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        unsigned n = 0;
        for (uint64_t t = m; t; t >>= 8)
            n++;
        put8(o, 110);
        put8(o, n);
        put8(o, v < 0);
        for (unsigned i = 0; i < n; i++, m >>= 8)
            put8(o, (unsigned)(m & 0xFF));
    }
    return 0;
}

static int
enc_float(Out *o, PyObject *obj)
{
    double x = PyFloat_AS_DOUBLE(obj);
    if (!isfinite(x))
        return 1;
    if (reserve(o, 9) < 0)
        return -1;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    put8(o, 70);
    put32(o, (uint32_t)(bits >> 32));
    put32(o, (uint32_t)bits);
    return 0;
}

static int
enc_binary(Out *o, const char *data, Py_ssize_t n)
{
    if ((uint64_t)n > 0xFFFFFFFFULL)
        return 1;
    if (reserve(o, 5 + n) < 0)
        return -1;
    put8(o, 109);
    put32(o, (uint32_t)n);
    memcpy(o->buf + o->len, data, n);
    o->len += n;
    return 0;
}

static int
enc_list(Out *o, PyObject *obj)
{
    Py_ssize_t n = PyList_GET_SIZE(obj);
    if (n == 0) {
        if (reserve(o, 1) < 0)
            return -1;
        put8(o, 106);
        return 0;
    }
    if ((uint64_t)n > 0xFFFFFFFFULL)
        return 1;
    if (n <= 0xFFFF) { /* all ints 0..255: STRING_EXT, as term_to_binary does */
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            PyObject *item = PyList_GET_ITEM(obj, i);
            if (!PyLong_CheckExact(item))
                break;
            int overflow;
            long v = PyLong_AsLongAndOverflow(item, &overflow);
            if (overflow || v < 0 || v > 255)
                break;
        }
        if (i == n) {
            if (reserve(o, 3 + n) < 0)
                return -1;
            put8(o, 107);
            put16(o, (uint32_t)n);
            for (i = 0; i < n; i++)
                put8(o, (unsigned)PyLong_AsLong(PyList_GET_ITEM(obj, i)));
            return 0;
        }
    }
    if (reserve(o, 5) < 0)
        return -1;
    put8(o, 108);
    put32(o, (uint32_t)n);
    if (enter(o) < 0)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        if (PyList_GET_SIZE(obj) != n) { /* changed under us (by a callback) */
            rc = -1;
            break;
        }
        PyObject *item = PyList_GET_ITEM(obj, i);
        Py_INCREF(item);
        rc = enc(o, item);
        Py_DECREF(item);
    }
    leave(o);
    if (rc < 0 || PyList_GET_SIZE(obj) != n || reserve(o, 1) < 0)
        return -1;
    put8(o, 106);
    return 0;
}

static int
enc_tuple(Out *o, PyObject *obj)
{
    Py_ssize_t n = PyTuple_GET_SIZE(obj);
    if ((uint64_t)n > 0xFFFFFFFFULL)
        return 1;
    if (reserve(o, 5) < 0)
        return -1;
    if (n < 256) {
        put8(o, 104);
        put8(o, (unsigned)n);
    }
    else {
        put8(o, 105);
        put32(o, (uint32_t)n);
    }
    if (enter(o) < 0)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++)
        rc = enc(o, PyTuple_GET_ITEM(obj, i));
    leave(o);
    return rc;
}

static int
enc_map(Out *o, PyObject *obj)
{
    Py_ssize_t n = PyDict_GET_SIZE(obj), i = 0;
    if ((uint64_t)n > 0xFFFFFFFFULL)
        return 1;
    if (reserve(o, 5) < 0)
        return -1;
    put8(o, 116);
    put32(o, (uint32_t)n);
    PyObject *key, *value;
    if (enter(o) < 0)
        return -1;
    int rc = 0;
    while (rc == 0 && PyDict_Next(obj, &i, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        rc = enc(o, key);
        if (rc == 0)
            rc = enc(o, value);
        Py_DECREF(key);
        Py_DECREF(value);
    }
    leave(o);
    return rc == 0 && PyDict_GET_SIZE(obj) == n ? 0 : -1;
}

static int
enc_string(Out *o, PyObject *obj)
{
    PyObject *text = SLOT(obj, off_text);
    if (text == NULL || !PyUnicode_CheckExact(text))
        return 1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n == 0) {
        if (reserve(o, 1) < 0)
            return -1;
        put8(o, 106);
        return 0;
    }
    if (n > 0xFFFF || PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND)
        return 1;
    if (reserve(o, 3 + n) < 0)
        return -1;
    put8(o, 107);
    put16(o, (uint32_t)n);
    memcpy(o->buf + o->len, PyUnicode_1BYTE_DATA(text), n);
    o->len += n;
    return 0;
}

static int
enc_pid(Out *o, PyObject *obj)
{
    PyObject *node = SLOT(obj, off_pid_node);
    long long id = u32_value(SLOT(obj, off_pid_id));
    long long serial = u32_value(SLOT(obj, off_pid_serial));
    long long creation = u32_value(SLOT(obj, off_pid_creation));
    if (!is_str(node) || id < 0 || serial < 0 || creation < 0)
        return 1;
    if (reserve(o, 1) < 0)
        return -1;
    put8(o, 88);
    if (put_atom(o, node) < 0 || reserve(o, 12) < 0)
        return -1;
    put32(o, (uint32_t)id);
    put32(o, (uint32_t)serial);
    put32(o, (uint32_t)creation);
    return 0;
}

static int
enc_ref(Out *o, PyObject *obj)
{
    PyObject *node = SLOT(obj, off_ref_node);
    PyObject *ids = SLOT(obj, off_ref_ids);
    long long creation = u32_value(SLOT(obj, off_ref_creation));
    if (!is_str(node) || creation < 0 || ids == NULL || !PyTuple_CheckExact(ids))
        return 1;
    Py_ssize_t n = PyTuple_GET_SIZE(ids);
    long long words[5];
    if (n < 1 || n > 5)
        return 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((words[i] = u32_value(PyTuple_GET_ITEM(ids, i))) < 0)
            return 1;
    }
    if (reserve(o, 3) < 0)
        return -1;
    put8(o, 90);
    put16(o, (uint32_t)n);
    if (put_atom(o, node) < 0 || reserve(o, 4 + 4 * n) < 0)
        return -1;
    put32(o, (uint32_t)creation);
    for (Py_ssize_t i = 0; i < n; i++)
        put32(o, (uint32_t)words[i]);
    return 0;
}

static int
enc_native(Out *o, PyObject *obj)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type == atom_type)
        return put_atom(o, obj);
    if (type == &PyLong_Type)
        return enc_int(o, obj);
    if (type == &PyTuple_Type)
        return enc_tuple(o, obj);
    if (type == &PyList_Type)
        return enc_list(o, obj);
    if (type == string_type)
        return enc_string(o, obj);
    if (type == &PyBool_Type)
        return obj == Py_True ? put_raw(o, "w\x04true", 6) : put_raw(o, "w\x05" "false", 7);
    if (type == &PyBytes_Type)
        return enc_binary(o, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
    if (type == &PyDict_Type)
        return enc_map(o, obj);
    if (type == &PyFloat_Type)
        return enc_float(o, obj);
    if (type == pid_type)
        return enc_pid(o, obj);
    if (type == ref_type)
        return enc_ref(o, obj);
    if (obj == Py_None)
        return put_raw(o, "w\x09undefined", 11);
    if (type == &PyUnicode_Type) {
        Py_ssize_t n;
        if (PyUnicode_IS_ASCII(obj)) { /* the text is its UTF-8: no copy */
            const char *raw = PyUnicode_AsUTF8AndSize(obj, &n);
            return raw == NULL ? -1 : enc_binary(o, raw, n);
        }
        /* a bytes copy rather than AsUTF8AndSize, which would keep the UTF-8 form
         * attached to the str for its lifetime */
        PyObject *raw = PyUnicode_AsUTF8String(obj);
        if (raw == NULL)
            return -1;
        int rc = enc_binary(o, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
        Py_DECREF(raw);
        return rc;
    }
    if (type == &PyByteArray_Type)
        return enc_binary(o, PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj));
    return 1;
}

static int
enc(Out *o, PyObject *obj)
{
    int rc = enc_native(o, obj);
    if (rc > 0) /* everything else: the Python encoder's bytes for it */
        rc = put_result(o, PyObject_CallOneArg(encode_piece_fn, obj));
    return rc;
}


static PyObject *
speedups_encode(PyObject *self, PyObject *term)
{
    if (!encoder_ready)
        return fallback();
    Out o = {PyBytes_FromStringAndSize(NULL, 256), NULL, 0, 256, 0};
    if (o.bytes == NULL)
        return NULL;
    o.buf = PyBytes_AS_STRING(o.bytes);
    put8(&o, 131);
    if (enc(&o, term) < 0 || _PyBytes_Resize(&o.bytes, o.len) < 0) {
        Py_XDECREF(o.bytes);
        /* whatever went wrong, the pure encoder says it exactly */
        PyErr_Clear();
        return fallback();
    }
    return o.bytes;
}

/* -- module ------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"configure_decoder", configure_decoder, METH_VARARGS,
     "Hand over the Python decoder's types, caches, atom functions and tag table."},
    {"configure_encoder", configure_encoder, METH_VARARGS,
     "Hand over the Python encoder's types, atom cache, atom function and callback."},
    {"decode", (PyCFunction)(void (*)(void))speedups_decode, METH_FASTCALL,
     "decode(data, pos, max_depth) -> (term, end); Fallback on anything unusual."},
    {"encode", speedups_encode, METH_O, "encode(term) -> bytes; Fallback on any error."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "erlbridge.term._speedups",
    "Compiled fast paths for erlbridge.term's codec (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Fallback = PyErr_NewException("erlbridge.term._speedups.Fallback", NULL, NULL);
    if (Fallback == NULL || PyModule_AddObjectRef(m, "Fallback", Fallback) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
