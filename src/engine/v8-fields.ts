/**
 * Values that set a class field's shape in V8 before the write path is
 * compiled (issue 15).
 *
 * V8 fixes a field's representation and constness at its first stores: a
 * field first stored as a small integer is a Smi field, and one stored once
 * is compiled into optimised code as a constant. A later fraction (a sum of
 * milliseconds) widens the field to a double and changes the class's map,
 * and a later write makes the constant a variable: either deoptimises every
 * optimised function that relied on it, and V8 compiles them again. A
 * store's first sync round and first rotation did both on the Store, its
 * segments and hint builders, ~1 M sets into a run: the write path ran
 * unoptimised meanwhile and the compile threads took the event loop's CPU
 * (--trace-deopt, BENCHMARKS.md "Engine").
 *
 * So a constructor stores these first, then the field's real initial value:
 * a field given AS_DOUBLE first is a double field from the start, and one
 * written twice is a variable from the start. Neither changes a value any
 * code reads.
 */

/** Not a small integer: a number field first stored with it is held as a double. */
export const AS_DOUBLE = 0.5;
/** A number the real initial value differs from: the second store makes the field a variable. */
export const AS_VARIABLE = -1;
