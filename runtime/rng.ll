; The counter-based random generator of azc (native form).
;
; The same functions as runtime/rng.py, step for step, so that compiled
; kernels, the native interpreter and exported predictors draw exactly what
; the reference interpreter draws.  See rng.py for the key scheme.
; Constants: GOLDEN = 0x9E3779B97F4A7C15, M1 = 0xBF58476D1CE4E5B9,
; M2 = 0x94D049BB133111EB (written as signed i64), 2^-52, 0.5, 2*pi, -2.0.
; This text is spliced into modules that use random ops; keep it valid LLVM IR
; that declares nothing the including module might declare again.

define internal i64 @azc_mix(i64 %z) alwaysinline nounwind {
  %a = lshr i64 %z, 30
  %b = xor i64 %z, %a
  %c = mul i64 %b, -4658895280553007687
  %d = lshr i64 %c, 27
  %e = xor i64 %c, %d
  %f = mul i64 %e, -7723592293110705685
  %g = lshr i64 %f, 31
  %h = xor i64 %f, %g
  ret i64 %h
}

define internal i64 @azc_task_key(i64 %seed, i64 %task) alwaysinline nounwind {
  %t = add i64 %task, -7046029254386353131
  %m = call i64 @azc_mix(i64 %t)
  %x = xor i64 %seed, %m
  %k = call i64 @azc_mix(i64 %x)
  ret i64 %k
}

define internal i64 @azc_exec_key(i64 %ktask, i64 %exec) alwaysinline nounwind {
  %x = xor i64 %ktask, %exec
  %k = call i64 @azc_mix(i64 %x)
  ret i64 %k
}

define internal i64 @azc_slot_key(i64 %kexec, i64 %slot) alwaysinline nounwind {
  %s = add i64 %slot, 1
  %g = mul i64 %s, -7046029254386353131
  %x = xor i64 %kexec, %g
  %k = call i64 @azc_mix(i64 %x)
  ret i64 %k
}

; The e-th open-interval (0, 1) uniform of a slot.
define internal double @azc_uniform01(i64 %kslot, i64 %e) alwaysinline nounwind {
  %e1 = add i64 %e, 1
  %g = mul i64 %e1, -7046029254386353131
  %z = add i64 %kslot, %g
  %bits = call i64 @azc_mix(i64 %z)
  %top = lshr i64 %bits, 12
  %f = uitofp i64 %top to double
  %h = fadd double %f, 0x3FE0000000000000
  %u = fmul double %h, 0x3CB0000000000000
  ret double %u
}

; U(lo, hi) from one uniform; lo when the interval is empty (not lo < hi).
define internal double @azc_uniform(double %lo, double %hi, double %u) alwaysinline nounwind {
  %ok = fcmp olt double %lo, %hi
  %w = fsub double %hi, %lo
  %p = fmul double %w, %u
  %x = fadd double %lo, %p
  %r = select i1 %ok, double %x, double %lo
  ret double %r
}

; N(mean, std) by Box-Muller with the C library's log, sqrt and cos.
define internal double @azc_gaussian(double %mean, double %std, double %u1, double %u2) alwaysinline nounwind {
  %l = call double @log(double %u1)
  %m = fmul double %l, 0xC000000000000000
  %r = call double @llvm.sqrt.f64(double %m)
  %a = fmul double %u2, 0x401921FB54442D18
  %c = call double @cos(double %a)
  %z = fmul double %r, %c
  %s = fmul double %std, %z
  %x = fadd double %mean, %s
  ret double %x
}
