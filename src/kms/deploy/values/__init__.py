"""Values of each upstream chart for a stack, one module per chart; each function returns a plain
dict in the chart's own keys (shared/specs/k8s-charts.md section 2)."""
