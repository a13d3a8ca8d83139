/*
 * Keeps the frame stacks of finished tasks for the next tasks to start with.
 *
 * Since 3.11 the first Python frame a new greenlet runs makes CPython take a
 * fresh 16 KiB chunk for its frame stack from the object arena allocator,
 * which maps it with mmap, and greenlet hands it back (munmap) when the
 * greenlet ends: two system calls and a page fault per task, about half of
 * what spawning and joining a task costs.  This wraps the arena allocator:
 * chunks of exactly that size are kept, up to KEEP of them, and handed out
 * again; every other request, and every chunk past KEEP, goes to the
 * allocator that was there before.  Kept chunks came from that allocator
 * too, so handing any of them back to it later is always right.
 *
 * Part of the optional compiled build; without it tasks start the same way,
 * only with the system calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>

/* CPython's frame stack chunk (DATA_STACK_CHUNK_SIZE in Python/pystate.c, 3.11-3.13). */
#define CHUNK_SIZE (16 * 1024)
/* At most 1 MiB kept: enough for the tasks that end between two that start. */
#define KEEP 64

static PyObjectArenaAllocator previous;
static int installed;
static void *kept[KEEP];
static int kept_count;
static unsigned long long reused, released;
/* Arena calls are made with the GIL held, but interpreters with their own GIL (3.12+) share this. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *
cache_alloc(void *ctx, size_t size)
{
    if (size == CHUNK_SIZE) {
        void *chunk = NULL;
        pthread_mutex_lock(&lock);
        if (kept_count > 0) {
            chunk = kept[--kept_count];
            reused++;
        }
        pthread_mutex_unlock(&lock);
        if (chunk != NULL)
            return chunk;
    }
    return previous.alloc(previous.ctx, size);
}

static void
cache_free(void *ctx, void *ptr, size_t size)
{
    if (size == CHUNK_SIZE && ptr != NULL) {
        int kept_it = 0;
        pthread_mutex_lock(&lock);
        if (kept_count < KEEP) {
            kept[kept_count++] = ptr;
            kept_it = 1;
        } else {
            released++;
        }
        pthread_mutex_unlock(&lock);
        if (kept_it)
            return;
    }
    previous.free(previous.ctx, ptr, size);
}

static PyObject *
install(PyObject *module, PyObject *unused)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (!installed) {
        PyObjectArenaAllocator wrapper = {NULL, cache_alloc, cache_free};
        PyObject_GetArenaAllocator(&previous);
        PyObject_SetArenaAllocator(&wrapper);
        installed = 1;
    }
    Py_RETURN_TRUE;
#else
    /* Before 3.11 frames are ordinary objects: there is no frame stack to keep. */
    Py_RETURN_FALSE;
#endif
}

static PyObject *
stats(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&lock);
    int count = kept_count;
    unsigned long long reused_now = reused, released_now = released;
    pthread_mutex_unlock(&lock);
    return Py_BuildValue(
        "{s:O,s:i,s:i,s:i,s:K,s:K}", "installed", installed ? Py_True : Py_False, "chunk_size", CHUNK_SIZE,
        "keep", KEEP, "kept", count, "reused", reused_now, "released", released_now);
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS,
     "Keep finished tasks' frame stacks for new ones; True where there are such stacks (3.11+)."},
    {"stats", stats, METH_NOARGS,
     "The cache's state: installed, chunk_size, keep, kept, and the chunks reused and released so far."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "corun._stackcache",
    "Keeps the frame stacks of finished tasks for the next tasks to start with.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__stackcache(void)
{
    return PyModule_Create(&module_def);
}
