"""The version of the contract between peft-core and method packages.

It changes only when something a method package relies on changes incompatibly (the hooks of
`BaseTuner` / `BaseTunerLayer`, the registration call). Method packages state the range they
support with `register_peft_method(..., plugin_api=">=1,<2")`.
"""

PLUGIN_API_VERSION = 1
