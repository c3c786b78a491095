/* SPDX-License-Identifier: MIT */
/*
 * memory_manager.cc - a RuntimeDyld memory manager over hugeperm: where
 * LLVM's JITs (MCJIT, ORC's RTDyldObjectLinkingLayer) put the sections of
 * the objects they link.
 *
 * LLVM's SectionMemoryManager maps each object's sections on 4 KiB pages of
 * their own, RW, and flips the code pages to RX in finalizeMemory: a JIT
 * that compiles function by function spends a page (and a mapping, and an
 * mprotect) per function, none of it huge-mapped.  Here:
 *
 *   code       hp_code_alloc(): 64-byte granules packed into RX blocks;
 *   read-only  PROT_READ pages, read-write PROT_READ|PROT_WRITE pages, both
 *              packed section after section into 64 KiB runs that the
 *              managers of one factory share (DataPool).
 *
 * Every section has two addresses: where it runs or is read (load) and
 * where RuntimeDyld writes it while loading and relocating (local).  For
 * writable data they are one.  For code, local is the RX block's writable
 * alias (hp_writable()); where there is no alias (read-only data, an arena
 * without aliases) it is a staging copy that finalizeMemory() hands to
 * hp_write().  A staging copy lives as long as its section: RuntimeDyld
 * finds a section by its local address (mapSectionAddress) among all it
 * has loaded, and a freed copy's address, reused by malloc for a later
 * section, would find the earlier one.  notifyObjectLoaded() tells RuntimeDyld each section's load
 * address (mapSectionAddress), before any relocation is applied, so the
 * code is linked for the address it runs at, and no page is ever writable
 * and executable, or changes protection.
 *
 * Exception frames are registered at their load address (the unwinder
 * decodes their PC-relative fields where it reads them), after the staged
 * copy, if any, is written there.
 */
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <sys/mman.h>

#include <llvm/ExecutionEngine/RuntimeDyld.h>
#include <llvm/Support/Memory.h>

#include "hugeperm-llvm.h"

using namespace llvm;

namespace
{
/* hugeperm's calls, in @arena or (NULL) the default arena. */
void *code_alloc(hp_arena *a, size_t size)
{
	return a ? hp_arena_code_alloc(a, size) : hp_code_alloc(size);
}

int code_free(hp_arena *a, void *p)
{
	return a ? hp_arena_code_free(a, p) : hp_code_free(p);
}

void *page_alloc(hp_arena *a, size_t size, int prot)
{
	return a ? hp_arena_alloc(a, size, prot) : hp_alloc(size, prot);
}

int page_free(hp_arena *a, void *p)
{
	return a ? hp_arena_free(a, p) : hp_free(p);
}

void *writable(hp_arena *a, void *p)
{
	return a ? hp_arena_writable(a, p) : hp_writable(p);
}

int write_to(hp_arena *a, void *dst, const void *src, size_t size)
{
	return a ? hp_arena_write(a, dst, src, size) : hp_write(dst, src, size);
}

uint8_t *align_up(void *p, size_t align)
{
	uintptr_t x = reinterpret_cast<uintptr_t>(p);
	return reinterpret_cast<uint8_t *>((x + align - 1) & ~(uintptr_t)(align - 1));
}

constexpr size_t kPage = 4096;
} // namespace

namespace hugeperm
{
/*
 * DataPool - data sections packed into runs of pages of one class.
 *
 * A run is one hp_alloc() of kRunSize bytes; sections are cut from the
 * current run one after the other and each holds a reference to its run;
 * the run is freed when its last section is and it is no longer current.
 * Sections larger than a quarter of a run get a run of their own.
 */
class DataPool
{
      public:
	struct Run {
		uint8_t *base; /* from hp_alloc() */
		size_t size;   /* bytes of the allocation */
		size_t used;   /* bytes handed out */
		unsigned live; /* sections cut from it and not yet freed */
	};

	explicit DataPool(hp_arena *arena) : arena_(arena)
	{
	}

	~DataPool()
	{
		for (Run *&r : current_)
			if (r && r->live == 0)
				release(r);
	}

	/* A section of @size bytes aligned to @align, in pages of class
	 * @prot; *run gets what to give back to put().  NULL + errno. */
	uint8_t *get(int prot, size_t size, size_t align, Run **run)
	{
		std::lock_guard<std::mutex> g(lock_);
		int k = prot & PROT_WRITE ? 1 : 0;
		Run *r = current_[k];
		if (size > kRunSize / 4 || align > kPage) {
			size_t n = size + (align > kPage ? align : 0);
			r = make(prot, (n + kPage - 1) & ~(kPage - 1));
			if (!r)
				return nullptr;
			r->used = r->size;
			r->live = 1;
			*run = r;
			return align_up(r->base, align);
		}
		if (!r || (uintptr_t)align_up(r->base + r->used, align) + size >
				  (uintptr_t)r->base + r->size) {
			Run *fresh = make(prot, kRunSize);
			if (!fresh)
				return nullptr;
			if (r && r->live == 0)
				release(r);
			current_[k] = r = fresh;
		}
		uint8_t *p = align_up(r->base + r->used, align);
		r->used = p + size - r->base;
		r->live++;
		*run = r;
		return p;
	}

	void put(Run *r)
	{
		std::lock_guard<std::mutex> g(lock_);
		if (--r->live == 0 && r != current_[0] && r != current_[1])
			release(r);
	}

      private:
	static constexpr size_t kRunSize = 64 * 1024;

	Run *make(int prot, size_t size)
	{
		void *p = page_alloc(arena_, size, prot);
		if (!p)
			return nullptr;
		return new Run{static_cast<uint8_t *>(p), size, 0, 0};
	}

	void release(Run *r)
	{
		page_free(arena_, r->base);
		delete r;
	}

	std::mutex lock_;
	hp_arena *arena_;
	Run *current_[2] = {nullptr, nullptr}; /* [0] read-only, [1] read-write */
};

/* The memory manager of one MCJIT, or of one object in ORC. */
class MemoryManager : public RTDyldMemoryManager
{
      public:
	MemoryManager(hp_arena *arena, std::shared_ptr<DataPool> pool)
	    : arena_(arena), pool_(pool ? std::move(pool) : newDataPool(arena))
	{
	}

	~MemoryManager() override
	{
		deregisterEHFrames();
		for (Section &s : sections_) {
			if (s.copy)
				std::free(s.local);
			if (s.run)
				pool_->put(s.run);
			else
				code_free(arena_, s.base);
		}
	}

	uint8_t *allocateCodeSection(uintptr_t size, unsigned align, unsigned id,
				     StringRef name) override
	{
		size_t n = size ? size : 1;
		size_t a = align ? align : 1;
		/* hp_code_alloc aligns to 64 bytes, or to a page above
		 * HP_CODE_MAX_PACKED; more is had by asking for more. */
		size_t have = n > HP_CODE_MAX_PACKED ? kPage : HP_CODE_ALIGN;
		size_t extra = a > have ? a - have : 0;
		void *base = code_alloc(arena_, n + extra);
		if (!base)
			return nullptr;
		uint8_t *p = add(base, align_up(base, a), n, nullptr);
		if (!p)
			code_free(arena_, base);
		return p;
	}

	uint8_t *allocateDataSection(uintptr_t size, unsigned align, unsigned id, StringRef name,
				     bool read_only) override
	{
		size_t n = size ? size : 1;
		DataPool::Run *run;
		int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;
		uint8_t *load = pool_->get(prot, n, align ? align : 1, &run);
		if (!load)
			return nullptr;
		uint8_t *p = add(nullptr, load, n, run);
		if (!p)
			pool_->put(run);
		return p;
	}

	/* Before relocations: each section is linked for where it runs. */
	void notifyObjectLoaded(RuntimeDyld &dyld, const object::ObjectFile &obj) override
	{
		for (Section &s : sections_)
			if (!s.mapped) {
				if (s.local != s.load)
					dyld.mapSectionAddress(s.local,
							       (uint64_t)(uintptr_t)s.load);
				s.mapped = true;
			}
	}

	void registerEHFrames(uint8_t *addr, uint64_t load_addr, size_t size) override
	{
		for (Section &s : sections_)
			if (s.local == addr && s.pending)
				flush(s, nullptr);
		RTDyldMemoryManager::registerEHFrames(reinterpret_cast<uint8_t *>(load_addr),
						      load_addr, size);
	}

	bool finalizeMemory(std::string *err) override
	{
		for (Section &s : sections_) {
			if (s.done)
				continue;
			if (s.pending && !flush(s, err))
				return true;
			if (!s.run)
				sys::Memory::InvalidateInstructionCache(s.load, s.size);
			s.done = true;
		}
		return false;
	}

      private:
	struct Section {
		void *base;	    /* code: what hp_code_alloc() returned */
		DataPool::Run *run; /* data: its run in the pool (NULL: code) */
		uint8_t *load;	    /* where it runs or is read */
		uint8_t *local;	    /* where RuntimeDyld writes it */
		size_t size;	    /* bytes RuntimeDyld asked for */
		bool copy;	    /* local is a staging copy (malloc) */
		bool pending;	    /* ... not yet hp_write()n to load */
		bool mapped;	    /* RuntimeDyld knows the load address */
		bool done;	    /* finalized */
	};

	/* Record a section at @load: its local address is the writable view,
	 * or a staging copy of what @load holds (code: the trap bytes). */
	uint8_t *add(void *base, uint8_t *load, size_t n, DataPool::Run *run)
	{
		Section s = {base, run, load, nullptr, n, false, false, false, false};
		s.local = static_cast<uint8_t *>(writable(arena_, load));
		if (!s.local) {
			s.local = static_cast<uint8_t *>(std::malloc(n));
			if (!s.local)
				return nullptr;
			std::memcpy(s.local, load, n);
			s.copy = s.pending = true;
		}
		sections_.push_back(s);
		return s.local;
	}

	/* Write a staged section to where it is read. */
	bool flush(Section &s, std::string *err)
	{
		if (write_to(arena_, s.load, s.local, s.size) != 0) {
			if (err)
				*err = std::string("hugeperm: hp_write of a section: ") +
				       std::strerror(errno);
			return false;
		}
		s.pending = false;
		return true;
	}

	hp_arena *arena_;
	std::shared_ptr<DataPool> pool_;
	std::vector<Section> sections_;
};

std::shared_ptr<DataPool> newDataPool(hp_arena *arena)
{
	return std::make_shared<DataPool>(arena);
}

std::unique_ptr<RTDyldMemoryManager> createMemoryManager(hp_arena *arena,
							 std::shared_ptr<DataPool> pool)
{
	return std::make_unique<MemoryManager>(arena, std::move(pool));
}

std::function<std::unique_ptr<RuntimeDyld::MemoryManager>()> memoryManagerFactory(hp_arena *arena)
{
	std::shared_ptr<DataPool> pool = newDataPool(arena);
	return [arena, pool]() -> std::unique_ptr<RuntimeDyld::MemoryManager> {
		return std::make_unique<MemoryManager>(arena, pool);
	};
}
} // namespace hugeperm

extern "C" LLVMMCJITMemoryManagerRef hp_llvm_memory_manager_create(hp_arena *arena)
{
	/* The C API's handle is the RTDyldMemoryManager itself (LLVM's
	 * ExecutionEngineBindings.cpp wraps and unwraps it so). */
	RTDyldMemoryManager *mm = new hugeperm::MemoryManager(arena, nullptr);
	return reinterpret_cast<LLVMMCJITMemoryManagerRef>(mm);
}
