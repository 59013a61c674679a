"""MongoDB ``$jsonSchema`` validators generated from the document models.

The domain validates first; the server validates again, so that no other writer (a script, an
older release, a bug in a bulk path) can store a document the application could not read back.
"""

from __future__ import annotations

import types
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from bson import ObjectId
from pydantic import BaseModel

_SCALARS: dict[type, list[str]] = {
    str: ["string"],
    bool: ["bool"],
    int: ["int", "long"],
    float: ["double", "int", "long"],
    datetime: ["date"],
    Decimal: ["decimal"],
    bytes: ["binData"],
}
_SKIP = frozenset({"revision_id"})


def _constraints(metadata: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    array = schema.get("bsonType") == "array"
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            schema["minimum"] = item.ge
        elif isinstance(item, annotated_types.Le):
            schema["maximum"] = item.le
        elif isinstance(item, annotated_types.MinLen):
            schema["minItems" if array else "minLength"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            schema["maxItems" if array else "maxLength"] = item.max_length
    return schema


def schema_for_type(annotation: Any, metadata: list[Any] | None = None) -> dict[str, Any]:
    metadata = list(metadata or [])
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        for item in extra:
            metadata.extend(getattr(item, "metadata", []) or [item])
        return schema_for_type(inner, metadata)
    if origin in (Union, types.UnionType):
        options = [schema_for_type(arg, metadata) for arg in get_args(annotation) if arg is not type(None)]
        nullable = type(None) in get_args(annotation)
        if len(options) == 1:
            schema = dict(options[0])
            if nullable:
                schema["bsonType"] = [*_as_list(schema["bsonType"]), "null"]
            return schema
        return {"anyOf": options + ([{"bsonType": "null"}] if nullable else [])}
    if origin is Literal:
        return {"enum": list(get_args(annotation))}
    if origin is list:
        (item_type,) = get_args(annotation)
        return _constraints(metadata, {"bsonType": "array", "items": schema_for_type(item_type)})
    if origin is dict or annotation is dict:
        return {"bsonType": "object"}
    if isinstance(annotation, type) and issubclass(annotation, ObjectId):
        return {"bsonType": "objectId"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return schema_for_model(annotation)
    for python_type, bson_types in _SCALARS.items():
        if annotation is python_type:
            bson: str | list[str] = bson_types[0] if len(bson_types) == 1 else bson_types
            return _constraints(metadata, {"bsonType": bson})
    raise TypeError(f"no BSON type for {annotation!r}")


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def schema_for_model(model: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        if name in _SKIP:
            continue
        key = info.alias or name
        properties[key] = schema_for_type(info.annotation, list(info.metadata))
        if info.is_required():
            required.append(key)
    schema: dict[str, Any] = {"bsonType": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def validator_for(model: type[BaseModel]) -> dict[str, Any]:
    """The collection validator: ``_id`` is added for documents that leave it to the server."""
    schema = schema_for_model(model)
    schema["properties"].setdefault("_id", {})
    schema["additionalProperties"] = False
    return {"$jsonSchema": schema}
