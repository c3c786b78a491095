/* SPDX-License-Identifier: MIT */
/*
 * hugeperm-llvm.h - LLVM's JITs (MCJIT, ORC) with their code on hugeperm.
 *
 * A RuntimeDyld memory manager (libhugeperm-llvm): code sections come from
 * hp_code_alloc() (packed in 64-byte granules into huge-mapped RX blocks),
 * read-only data from the read-only class and read-write data from the
 * read-write class, both packed into shared pages.  No page is ever writable
 * and executable, and no page changes protection: RuntimeDyld applies the
 * relocations of a code section through the block's writable alias (or a
 * staging copy written with hp_write() where no alias exists), and is told
 * that the section will run at its executable address (mapSectionAddress).
 *
 * From C, through LLVM's MCJIT C API:
 *
 *	struct LLVMMCJITCompilerOptions o;
 *	LLVMInitializeMCJITCompilerOptions(&o, sizeof(o));
 *	o.MCJMM = hp_llvm_memory_manager_create(NULL);
 *	LLVMCreateMCJITCompilerForModule(&ee, module, &o, sizeof(o), &err);
 *
 * From C++, for ORC's RTDyldObjectLinkingLayer (one manager per object; the
 * managers of one factory share their data pages):
 *
 *	auto layer = std::make_unique<RTDyldObjectLinkingLayer>(
 *		es, hugeperm::memoryManagerFactory());
 */
#ifndef HUGEPERM_LLVM_H
#define HUGEPERM_LLVM_H

#include <llvm-c/ExecutionEngine.h>

#include "hugeperm.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * hp_llvm_memory_manager_create() - a memory manager for LLVMCreateMCJIT-
 * CompilerForModule() (LLVMMCJITCompilerOptions.MCJMM).
 * @arena: where the sections come from; NULL: the default arena.
 *
 * The execution engine that receives it owns it and frees its sections when
 * it is disposed; a manager never passed to one is freed with
 * LLVMDisposeMCJITMemoryManager().  Use one manager per execution engine.
 * Return: the manager (never NULL: allocation failures surface as LLVM's
 * "Unable to allocate section memory" when a module is loaded).
 */
HP_API LLVMMCJITMemoryManagerRef hp_llvm_memory_manager_create(struct hp_arena *arena);

#ifdef __cplusplus
} /* extern "C" */

#include <functional>
#include <memory>

#include <llvm/ExecutionEngine/RTDyldMemoryManager.h>

namespace hugeperm
{
class DataPool; /* data pages shared by the managers of one factory */

/**
 * createMemoryManager() - one memory manager.
 * @arena: NULL for the default arena.
 * @pool: data pages to share with other managers (NULL: a pool of its own),
 *        from newDataPool().
 */
HP_API std::unique_ptr<llvm::RTDyldMemoryManager>
createMemoryManager(struct hp_arena *arena = nullptr, std::shared_ptr<DataPool> pool = nullptr);

/* A pool of data pages for createMemoryManager(): thread-safe. */
HP_API std::shared_ptr<DataPool> newDataPool(struct hp_arena *arena = nullptr);

/**
 * memoryManagerFactory() - what RTDyldObjectLinkingLayer asks for: a
 * function making a manager per object, all sharing one data pool.
 */
HP_API std::function<std::unique_ptr<llvm::RuntimeDyld::MemoryManager>()>
memoryManagerFactory(struct hp_arena *arena = nullptr);
} // namespace hugeperm
#endif /* __cplusplus */
#endif /* HUGEPERM_LLVM_H */
