/* SPDX-License-Identifier: MIT */
/*
 * hugeperm_lli.cc - the hugeperm-lli command: run an LLVM IR module's main
 * as lli does (the same output, the same exit status, the arguments passed
 * on), with the code on hugeperm.
 *
 * It is ORC's LLJIT with an RTDyldObjectLinkingLayer whose memory managers
 * are hugeperm's (memory_manager.cc): each module is compiled whole into
 * an object of its own (lli --jit-kind=orc).  A JIT that compiles function
 * by function hands LLVM a module per function: --extra-module=FILE, as
 * lli's, adds modules, each its own object, where LLVM's own memory manager
 * spends a page a section.  --lazy compiles each function when first
 * called (lli --jit-kind=orc-lazy; LLVM 14's partitioning of a module costs
 * time quadratic in its functions).
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h>
#include <llvm/ExecutionEngine/Orc/TargetProcess/TargetExecutionUtils.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IRReader/IRReader.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include "hugeperm-llvm.h"

using namespace llvm;
using namespace llvm::orc;

namespace
{
const char *prog = "hugeperm-lli";
int stats_flags = -1; /* -1: no --stats; else hp_stats_print()'s flags */
bool stats_done;

/* --stats: at exit, also when the program calls exit() itself. */
void print_stats()
{
	if (stats_flags >= 0 && !stats_done) {
		stats_done = true;
		hp_stats_print(2, stats_flags);
	}
}

void usage(FILE *f)
{
	std::fprintf(f,
		     "usage: %s [OPTIONS] FILE.ll [ARGS...]\n"
		     "Run the main of an LLVM IR (or bitcode) module, as lli does, with its\n"
		     "code on hugeperm: packed into huge-mapped RX blocks, never writable.\n"
		     "  --stats[=json]        print the allocator's statistics to stderr at exit\n"
		     "  --extra-module=FILE   load FILE too, as an object of its own (repeatable)\n"
		     "  --lazy                compile each function when first called\n"
		     "                        (lli --jit-kind=orc-lazy; default: each module\n"
		     "                        whole, lli --jit-kind=orc)\n",
		     prog);
}

int fail(Error e, const char *what)
{
	logAllUnhandledErrors(std::move(e), errs(), std::string(prog) + ": " + what + ": ");
	return 1;
}

/* The JIT: LLJIT, or LLLazyJIT (each owned as what it is: LLVM 14's LLJIT
 * has no virtual destructor). */
struct Jit {
	std::unique_ptr<LLJIT> eager;
	std::unique_ptr<LLLazyJIT> lazy;
	LLJIT &get()
	{
		return lazy ? *lazy : *eager;
	}
};

Error make_jit(Jit &jit, bool lazy)
{
	auto layer = [](ExecutionSession &es,
			const Triple &) -> Expected<std::unique_ptr<ObjectLayer>> {
		return std::make_unique<RTDyldObjectLinkingLayer>(es,
								  hugeperm::memoryManagerFactory());
	};
	if (lazy) {
		auto j = LLLazyJITBuilder().setObjectLinkingLayerCreator(layer).create();
		if (!j)
			return j.takeError();
		jit.lazy = std::move(*j);
	} else {
		auto j = LLJITBuilder().setObjectLinkingLayerCreator(layer).create();
		if (!j)
			return j.takeError();
		jit.eager = std::move(*j);
	}
	return Error::success();
}

/* Parse @file and add it to @j: 0, or 1 with the message printed. */
int add_module(LLJIT &j, bool lazy, const char *file, bool need_main)
{
	auto ctx = std::make_unique<LLVMContext>();
	SMDiagnostic diag;
	std::unique_ptr<Module> m = parseIRFile(file, diag, *ctx);
	if (!m) {
		diag.print(prog, errs());
		return 1;
	}
	Function *main_fn = m->getFunction("main");
	if (need_main && (!main_fn || main_fn->isDeclaration())) {
		errs() << prog << ": '" << file << "': 'main' function not found in module.\n";
		return 1;
	}
	ThreadSafeModule tsm(std::move(m), std::move(ctx));
	Error added = lazy ? static_cast<LLLazyJIT &>(j).addLazyIRModule(std::move(tsm))
			   : j.addIRModule(std::move(tsm));
	return added ? fail(std::move(added), file) : 0;
}

int run(const char *file, const std::vector<std::string> &extra,
	const std::vector<std::string> &args, bool lazy)
{
	Jit jit;
	if (Error e = make_jit(jit, lazy))
		return fail(std::move(e), "cannot create the JIT");
	LLJIT &j = jit.get();
	auto gen = DynamicLibrarySearchGenerator::GetForCurrentProcess(
		j.getDataLayout().getGlobalPrefix());
	if (!gen)
		return fail(gen.takeError(), "cannot search the process's symbols");
	j.getMainJITDylib().addGenerator(std::move(*gen));

	if (add_module(j, lazy, file, true))
		return 1;
	for (const std::string &x : extra)
		if (add_module(j, lazy, x.c_str(), false))
			return 1;
	if (Error e = j.initialize(j.getMainJITDylib()))
		return fail(std::move(e), "static constructors");
	auto sym = j.lookup("main");
	if (!sym)
		return fail(sym.takeError(), file);
	auto *main_ptr = jitTargetAddressToFunction<int (*)(int, char *[])>(sym->getAddress());
	int status = runAsMain(main_ptr, args, StringRef(file));
	if (Error e = j.deinitialize(j.getMainJITDylib()))
		return fail(std::move(e), "static destructors");
	std::fflush(stdout);
	print_stats(); /* while the code is still allocated */
	return status;
}
} // namespace

int main(int argc, char **argv)
{
	bool lazy = false;
	std::vector<std::string> extra;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		/* --name or -name, as lli (LLVM's option parser) takes them */
		const char *o = argv[i] + (argv[i][1] == '-' ? 2 : 1);
		if (!std::strcmp(o, "stats"))
			stats_flags = 0;
		else if (!std::strcmp(o, "stats=json"))
			stats_flags = HP_STATS_JSON;
		else if (!std::strcmp(o, "lazy"))
			lazy = true;
		else if (!std::strncmp(o, "extra-module=", 13))
			extra.push_back(o + 13);
		else if (!std::strcmp(o, "help")) {
			usage(stdout);
			return 0;
		} else if (!*o) {
			i++;
			break;
		} else {
			std::fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *file = argv[i++];
	std::vector<std::string> args(argv + i, argv + argc);

	InitializeNativeTarget();
	InitializeNativeTargetAsmPrinter();
	InitializeNativeTargetAsmParser();
	std::atexit(print_stats);
	return run(file, extra, args, lazy);
}
