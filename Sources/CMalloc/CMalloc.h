// glibc's <malloc.h>, for malloc_trim(3). Swift's Glibc module does not include this header, and
// after BCC's clang has compiled a program, tens of megabytes it freed stay in the process until
// malloc_trim returns them to the kernel.
#include <malloc.h>
