/*
 * pmdk_inproc -- PMDK's side of the benchmarks that compare with it call by call, as a shared library a suite loads
 * into its own process: `daxfs bench map`'s 64-byte store + persist through DaxFS's own mapping, and `daxfs bench
 * fs`'s raw 4 KiB persist and copy-on-write floors into a scratch file of the volume being measured. Interleaved
 * with DaxFS's calls, so that neither where the pages lie in host memory nor what the shared machine did between
 * two runs is in the ratio.
 *
 * Build: gcc -O2 -Wall -shared -fPIC -o libpmdk_inproc.so pmdk_inproc.c -lpmem
 */
#include <libpmem.h>
#include <string.h>

/* For each of the k offsets: memcpy 64 bytes from src to base + offset, then pmem_persist those 64 bytes. */
void pmdk_store_persist_batch(char *base, const long *offsets, int k, const char *src)
{
	for (int j = 0; j < k; j++) {
		char *dst = base + offsets[j];
		memcpy(dst, src, 64);
		pmem_persist(dst, 64);
	}
}

/* pmem_memcpy_persist of len bytes: the raw durable copy. */
void pmdk_memcpy_persist(char *dst, const char *src, size_t len)
{
	pmem_memcpy_persist(dst, src, len);
}

/* The least a durable, atomic copy-on-write overwrite must do: the new block persisted, then a record (map change +
 * inode image) persisted after it -- two ordered fences. */
void pmdk_cow_floor(char *block, const char *src, size_t len, char *record, const char *record_src, size_t record_len)
{
	pmem_memcpy_persist(block, src, len);
	pmem_memcpy_persist(record, record_src, record_len);
}

/* The same with the smallest record there is: one 64-byte line, stored non-temporally and fenced (cheaper here than a
 * temporal store + CLWB). No atomic copy-on-write protocol with a second ordering point costs less. */
void pmdk_cow_floor_line(char *block, const char *src, size_t len, char *record, const char *record_src)
{
	pmem_memcpy_persist(block, src, len);
	pmem_memcpy(record, record_src, 64, PMEM_F_MEM_NONTEMPORAL);
	pmem_drain();
}

/* pmem_memcpy_persist, then one locked instruction (what releasing or taking any lock does). On x86 SFENCE orders
 * the non-temporal stores before later stores but lets execution go on while they drain, so back-to-back persists
 * overlap; a locked instruction waits until they have drained. A file system that takes a lock per call pays that. */
static long pmdk_lock_word;
void pmdk_memcpy_persist_locked(char *dst, const char *src, size_t len)
{
	pmem_memcpy_persist(dst, src, len);
	__atomic_fetch_add(&pmdk_lock_word, 1, __ATOMIC_SEQ_CST);
}

/* The one-line copy-on-write floor, then one locked instruction: the least a durable append (data, then the record
 * that exposes it) costs in a file system that takes a lock per call. */
void pmdk_cow_floor_line_locked(char *block, const char *src, size_t len, char *record, const char *record_src)
{
	pmdk_cow_floor_line(block, src, len, record, record_src);
	__atomic_fetch_add(&pmdk_lock_word, 1, __ATOMIC_SEQ_CST);
}
