"""The ``mmdet_sniper`` scope of mmengine's registries: a config read by its ``mmdet_sniper::`` name
builds its parts in this scope, as an ``mmdet::`` config builds in mmdet's. Each registry here is a child
of mmdet's registry of the same name and holds nothing itself: SNIPER's modules are registered in
mmdet's registries (so that plain ``custom_imports`` configs find them), and a child looks up what it
lacks in its parents."""
from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

__all__ = sorted(name for name, value in vars(mmdet_registry).items() if isinstance(value, Registry))

for _name in __all__:
    _parent = getattr(mmdet_registry, _name)
    # locations: the modules to import before a build; mmengine's default for a scope it knows is a
    # `register_all_modules`, which this package does not have.
    globals()[_name] = Registry(_parent.name, parent=_parent, scope='mmdet_sniper', locations=['mmdet_sniper'])
