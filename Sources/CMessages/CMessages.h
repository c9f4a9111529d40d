// sendmmsg(2) and recvmmsg(2), which Swift's Glibc module leaves out (glibc declares them only
// with _GNU_SOURCE). Declared here under names of our own, bound to glibc's symbols, with the
// vector as raw memory: including <sys/socket.h> again would clash with the Glibc module's types.
// Each entry of the vector is a struct mmsghdr: a struct msghdr, then the 4-byte msg_len, padded
// to NE_MMSGHDR_SIZE bytes on 64-bit Linux.
#define NE_MMSGHDR_SIZE 64

int ne_sendmmsg(int fd, void *messages, unsigned int count, int flags) __asm__("sendmmsg");
int ne_recvmmsg(int fd, void *messages, unsigned int count, int flags, void *timeout) __asm__("recvmmsg");
