// Jit.cs - a workload that makes Mono's JIT compile a lot: many generic
// instantiations and closures (each one JIT-compiled code), called hot.
// `mono Jit.exe [wait]`: with "wait", print "pid P" once the code is
// compiled, and finish after a line on stdin.
using System;
using System.Collections.Generic;

static class Jit {
	struct V1 { public long A; } struct V2 { public long A, B; } struct V3 { public long A, B, C; }
	struct V4 { public int A; } struct V5 { public short A; } struct V6 { public byte A; }
	static long Work<T, U>(T t, U u, int n) {
		var l = new List<KeyValuePair<T, U>>();
		long s = 0;
		for (int i = 0; i < n; i++) { l.Add(new KeyValuePair<T, U>(t, u)); s += l.Count * (i % 7); }
		return s + l.Count;
	}
	static long Cell<T, U>(T t, U u, int n) {
		return Work(t, u, n) + Work(u, t, n) + Work(new KeyValuePair<T, int>(t, 1), u, n) +
		       Work(t, new KeyValuePair<U, long>(u, 2), n);
	}
	static long Row<T>(T t, int n) {
		return Cell(t, 1, n) + Cell(t, 2L, n) + Cell(t, "s", n) + Cell(t, 1.5, n) +
		       Cell(t, new V1(), n) + Cell(t, new V2(), n) + Cell(t, new V3(), n) +
		       Cell(t, new V4(), n) + Cell(t, new V5(), n) + Cell(t, new V6(), n) +
		       Cell(t, 'c', n) + Cell(t, (byte)1, n);
	}
	static void Main(string[] args) {
		long s = 0;
		for (int r = 0; r < 20; r++) {
			s += Row(1, 200) + Row(2L, 200) + Row("s", 200) + Row(1.5, 200) + Row(new V1(), 200) +
			     Row(new V2(), 200) + Row(new V3(), 200) + Row(new V4(), 200) +
			     Row(new V5(), 200) + Row(new V6(), 200) + Row('c', 200) + Row((byte)1, 200);
			var fs = new List<Func<long, long>>();
			for (int k = 0; k < 200; k++) { int kk = k; fs.Add(x => x * kk + r); }
			foreach (var f in fs) s += f(r);
		}
		Console.WriteLine(s);
		if (args.Length > 0 && args[0] == "wait") {
			Console.WriteLine("pid " + System.Diagnostics.Process.GetCurrentProcess().Id);
			Console.Out.Flush();
			Console.In.ReadLine();
		}
	}
}
