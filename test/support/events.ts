/** JSON that EJSON or MongoDB would read as something else, were it a document rather than text. */
export const EJSON_SHAPED_PROPERTIES = `{
  "d": {"$date": "not-a-date"},
  "oid": {"$oid": "5f0000000000000000000000"},
  "bin": {"$binary": {"base64": "AAAA", "subType": "00"}},
  "code": {"$code": "function () { return 1 }"},
  "re": {"$regularExpression": {"pattern": "^a", "options": "i"}},
  "long": {"$numberLong": "NaN"},
  "dec": {"$numberDecimal": "1e6145"},
  "$where": "sleep(1000)",
  "$set": {"role": "admin"},
  "a.b": {"c.d": [1, {"$gt": ""}]},
  "__proto__": {"polluted": true},
  "constructor": {"prototype": {"x": 1}},
  "big": 12345678901234567890,
  "neg": -0.5,
  "nested": [[[{"$date": {"$numberLong": "NaN"}}]]]
}`;
