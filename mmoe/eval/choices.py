"""The named choices of evaluation (prompt styles, scoring modes, missing-row policies, dtypes), in a
module with no imports so the command line can offer them without loading the evaluator."""

STYLES = ("vlmevalkit", "vlmevalkit_translated", "llava", "lmms")
MODE_CHOICES = ("auto", "vanilla", "circular")
MISSING_POLICIES = ("strict", "vlmevalkit")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
