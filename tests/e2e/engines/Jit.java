// Jit.java - a HotSpot workload for tests/engines.sh: enough hot methods
// for C1 and C2 to compile into the code cache.  With "wait": print the pid
// and wait for a line on stdin, so the test can read /proc/PID/smaps.
public class Jit {
	static long f0(long x) { return x * 3 + 1; }
	static long f1(long x) { return (x ^ 0x5a) + 7; }
	static long f2(long x) { return x % 97 + x / 3; }
	static long f3(long x) { return Long.rotateLeft(x, 5) & 0xffff; }
	static long f4(long x) { return Integer.toString((int) (x & 0xfff)).hashCode(); }

	public static void main(String[] args) throws Exception {
		long s = 0;
		StringBuilder sb = new StringBuilder();
		for (int i = 0; i < 3_000_000; i++) {
			s += f0(i) + f1(i) + f2(i) + f3(i) + f4(i);
			if (i % 100_000 == 0) {
				sb.setLength(0);
				sb.append(s % 1000);
			}
		}
		System.out.println(s + " " + sb);
		if (args.length > 0 && args[0].equals("wait")) {
			System.out.println("pid " + ProcessHandle.current().pid());
			System.out.flush();
			System.in.read();
		}
	}
}
