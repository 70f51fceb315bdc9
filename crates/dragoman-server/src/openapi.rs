//! The OpenAPI 3.1 description of the operator API, served at `/v1/openapi.json`.

use serde_json::{Value, json};

fn error_responses() -> Value {
    json!({
        "400": {"description": "Invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "401": {"description": "Missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "404": {"description": "Unknown call or participant", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    })
}

fn with_errors(mut ok: Value) -> Value {
    if let (Some(map), Some(errors)) = (ok.as_object_mut(), error_responses().as_object()) {
        for (code, response) in errors {
            map.insert(code.clone(), response.clone());
        }
    }
    ok
}

fn call_path() -> Value {
    json!({"name": "call", "in": "path", "required": true, "schema": {"type": "string"}})
}

fn participant_path() -> Value {
    json!({"name": "participant", "in": "path", "required": true, "schema": {"type": "string"}})
}

fn filters() -> Value {
    json!([
        {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["upcoming", "live", "ended"]}},
        {"name": "date", "in": "query", "description": "Slots starting on this UTC day", "schema": {"type": "string", "format": "date"}},
        {"name": "booth", "in": "query", "schema": {"type": "string"}}
    ])
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Dragoman operator API",
            "version": "1",
            "description": "Book interpreted calls in hourly slots, hand out join links, watch and end live calls, export the history. Every route needs `Authorization: Bearer <operator_api_key>` (or `?api_key=` where a header cannot be set)."
        },
        "security": [{"operatorKey": []}],
        "paths": {
            "/v1/calls": {
                "post": {
                    "summary": "Book a call for a slot and get a join link per party",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateCall"}}}},
                    "responses": with_errors(json!({"201": {"description": "Booked", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Booked"}}}}}))
                },
                "get": {
                    "summary": "List calls (upcoming, live, ended)",
                    "parameters": filters(),
                    "responses": with_errors(json!({"200": {"description": "Calls by slot", "content": {"application/json": {"schema": {"type": "object", "properties": {"calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}}}}}}}}))
                }
            },
            "/v1/calls.csv": {
                "get": {
                    "summary": "Export calls with one row per party and its quality summary",
                    "parameters": filters(),
                    "responses": with_errors(json!({"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}))
                }
            },
            "/v1/calls/{call}": {
                "get": {
                    "summary": "One call with its parties, history and live state",
                    "parameters": [call_path()],
                    "responses": with_errors(json!({"200": {"description": "The call", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Call"}}}}}))
                }
            },
            "/v1/calls/{call}/end": {
                "post": {
                    "summary": "End a call: everyone is disconnected and its join links stop working",
                    "parameters": [call_path()],
                    "responses": with_errors(json!({"204": {"description": "Ended"}}))
                }
            },
            "/v1/calls/{call}/health": {
                "get": {
                    "summary": "A live call's current health: per participant and direction scores, bitrate, loss, jitter, RTT, NACK/PLI, frame rate, freezes; the event timeline",
                    "parameters": [call_path()],
                    "responses": with_errors(json!({"200": {"description": "Health", "content": {"application/json": {"schema": {"type": "object"}}}}}))
                }
            },
            "/v1/health/stream": {
                "get": {
                    "summary": "WebSocket (send the key as ?api_key=): a backlog of the last minutes, then a snapshot of every live call each second and events as they happen",
                    "responses": with_errors(json!({"101": {"description": "Switching to the WebSocket"}}))
                }
            },
            "/v1/calls/{call}/export.csv": {
                "get": {
                    "summary": "Export one call as CSV",
                    "parameters": [call_path()],
                    "responses": with_errors(json!({"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}))
                }
            },
            "/v1/calls/{call}/participants/{participant}": {
                "delete": {
                    "summary": "Remove a participant from a live call (they cannot rejoin it)",
                    "parameters": [call_path(), participant_path()],
                    "responses": with_errors(json!({"204": {"description": "Removed"}}))
                }
            },
            "/v1/calls/{call}/participants/{participant}/reconnect": {
                "post": {
                    "summary": "Ask a participant's client to reconnect its signaling (the membership is kept)",
                    "parameters": [call_path(), participant_path()],
                    "responses": with_errors(json!({"204": {"description": "Requested"}, "409": {"description": "No signaling connection now"}}))
                }
            }
        },
        "components": {
            "securitySchemes": {"operatorKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
                "Party": {
                    "type": "object", "required": ["name", "role"],
                    "properties": {
                        "identity": {"type": "string", "description": "Defaults to the role"},
                        "name": {"type": "string"},
                        "role": {"type": "string", "enum": ["company", "interpreter", "office", "buyer", "operator"]},
                        "languages": {"type": "array", "items": {"type": "string"}, "description": "Language codes, e.g. ko, en, th"}
                    }
                },
                "CreateCall": {
                    "type": "object", "required": ["booth", "slot_start", "parties"],
                    "properties": {
                        "booth": {"type": "string"},
                        "slot_start": {"type": "string", "format": "date-time"},
                        "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480, "default": 60},
                        "mode": {"type": "string", "enum": ["consecutive", "simultaneous"], "default": "consecutive"},
                        "parties": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Party"}}
                    }
                },
                "JoinLink": {
                    "type": "object",
                    "properties": {
                        "identity": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
                        "url": {"type": "string"}, "token": {"type": "string"},
                        "valid_from": {"type": "string", "format": "date-time"}, "valid_until": {"type": "string", "format": "date-time"}
                    }
                },
                "PartyRecord": {
                    "type": "object",
                    "properties": {
                        "identity": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
                        "languages": {"type": "array", "items": {"type": "string"}},
                        "first_joined_at": {"type": ["integer", "null"]}, "last_left_at": {"type": ["integer", "null"]},
                        "reconnects": {"type": "integer"},
                        "average_score": {"type": ["number", "null"]}, "worst_score": {"type": ["number", "null"]},
                        "worst_loss_percent": {"type": ["number", "null"]},
                        "packets_expected": {"type": "integer"}, "packets_lost": {"type": "integer"}
                    }
                },
                "Call": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "booth": {"type": "string"},
                        "slot_start": {"type": "integer", "description": "Unix seconds"}, "slot_end": {"type": "integer"},
                        "mode": {"type": "string"}, "state": {"type": "string", "enum": ["upcoming", "live", "ended"]},
                        "booked": {"type": "boolean"},
                        "started_at": {"type": ["integer", "null"]}, "ended_at": {"type": ["integer", "null"]},
                        "parties": {"type": "array", "items": {"$ref": "#/components/schemas/PartyRecord"}},
                        "live": {"type": "object", "description": "Only from GET /v1/calls/{call}"}
                    }
                },
                "Booked": {
                    "type": "object",
                    "properties": {"call": {"$ref": "#/components/schemas/Call"}, "join_links": {"type": "array", "items": {"$ref": "#/components/schemas/JoinLink"}}}
                }
            }
        }
    })
}
