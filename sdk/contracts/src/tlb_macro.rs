//! `tlb_struct!`: declares a schema struct and its [`crate::codec::CellCodec`] impl from one field
//! list, so the order of fields is written once and cannot differ between encoder and decoder.
//!
//! Field kinds: `uint(N)` / `int(N)` (a primitive integer in N bits, two's complement if signed), `coins` (u128), `addr` (addr_std),
//! `maybe_addr` (addr_none or addr_std), `bits256`, `bits512`, `boolean`, `cell` (^Cell),
//! `child` (^T), `maybe_child` (Maybe ^T), `inline` (T in place),
//! `snake` (^Cell holding a snake string), `maybe_snake` (Maybe ^Cell snake string), and
//! `HashmapE 256` dicts as `BTreeMap<Bits256, _>`: `dict_u32`, `dict_snake` (^Cell snake string
//! values), `dict_of` (values of a `CellCodec` type, inline).

macro_rules! tlb_store_field {
    (uint($n:expr), $b:ident, $v:expr) => {
        $b.store_number($n, $v)?;
    };
    (int($n:expr), $b:ident, $v:expr) => {
        $b.store_number($n, $v)?;
    };
    (coins, $b:ident, $v:expr) => {
        $crate::codec::store_coins($b, *$v)?;
    };
    (addr, $b:ident, $v:expr) => {
        $crate::codec::store_address($b, $v)?;
    };
    (maybe_addr, $b:ident, $v:expr) => {
        $crate::codec::store_maybe_address($b, $v.as_ref())?;
    };
    (bits256, $b:ident, $v:expr) => {
        $crate::codec::store_bits256($b, $v)?;
    };
    (bits512, $b:ident, $v:expr) => {
        $crate::codec::store_bits512($b, $v)?;
    };
    (boolean, $b:ident, $v:expr) => {
        $b.store_bit(*$v)?;
    };
    (cell, $b:ident, $v:expr) => {
        $b.store_reference($v)?;
    };
    (child, $b:ident, $v:expr) => {
        $b.store_reference(&$crate::codec::CellCodec::to_arc($v)?)?;
    };
    (maybe_child, $b:ident, $v:expr) => {
        match $v {
            Some(x) => {
                $b.store_bit(true)?;
                $b.store_reference(&$crate::codec::CellCodec::to_arc(x)?)?;
            }
            None => {
                $b.store_bit(false)?;
            }
        }
    };
    (inline, $b:ident, $v:expr) => {
        $crate::codec::CellCodec::store($v, $b)?;
    };
    (dict_u32, $b:ident, $v:expr) => {
        $crate::codec::store_dict256($b, $v, $crate::codec::write_u32)?;
    };
    (dict_snake, $b:ident, $v:expr) => {
        $crate::codec::store_dict256($b, $v, $crate::codec::write_snake)?;
    };
    (dict_of, $b:ident, $v:expr) => {
        $crate::codec::store_dict256($b, $v, $crate::codec::write_codec)?;
    };
    (snake, $b:ident, $v:expr) => {
        $b.store_child($crate::codec::snake_string_cell($v)?)?;
    };
    (maybe_snake, $b:ident, $v:expr) => {
        match $v {
            Some(s) => {
                $b.store_bit(true)?;
                $b.store_child($crate::codec::snake_string_cell(s)?)?;
            }
            None => {
                $b.store_bit(false)?;
            }
        }
    };
}

macro_rules! tlb_load_field {
    (uint($n:expr), $p:ident) => {
        $p.load_number($n)?
    };
    (int($n:expr), $p:ident) => {
        $p.load_number($n)?
    };
    (coins, $p:ident) => {
        $crate::codec::load_coins($p)?
    };
    (addr, $p:ident) => {
        $crate::codec::load_address($p)?
    };
    (maybe_addr, $p:ident) => {
        $crate::codec::load_maybe_address($p)?
    };
    (bits256, $p:ident) => {
        $crate::codec::load_bits256($p)?
    };
    (bits512, $p:ident) => {
        $crate::codec::load_bits512($p)?
    };
    (boolean, $p:ident) => {
        $p.load_bit()?
    };
    (cell, $p:ident) => {
        $crate::codec::load_ref($p)?
    };
    (child, $p:ident) => {
        $crate::codec::load_ref_as($p)?
    };
    (maybe_child, $p:ident) => {
        match $crate::codec::load_maybe_ref($p)? {
            Some(c) => Some($crate::codec::CellCodec::from_cell(&c)?),
            None => None,
        }
    };
    (inline, $p:ident) => {
        $crate::codec::CellCodec::load($p)?
    };
    (dict_u32, $p:ident) => {
        $crate::codec::load_dict256($p, $crate::codec::read_u32)?
    };
    (dict_snake, $p:ident) => {
        $crate::codec::load_dict256($p, $crate::codec::read_snake)?
    };
    (dict_of, $p:ident) => {
        $crate::codec::load_dict256($p, $crate::codec::read_codec)?
    };
    (snake, $p:ident) => {
        $crate::codec::read_snake_string(&*$crate::codec::load_ref($p)?)?
    };
    (maybe_snake, $p:ident) => {
        match $crate::codec::load_maybe_ref($p)? {
            Some(c) => Some($crate::codec::read_snake_string(&c)?),
            None => None,
        }
    };
}

macro_rules! tlb_json_field {
    (uint($n:expr), $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (int($n:expr), $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (coins, $v:expr) => {
        $crate::json::coins_json(*$v)
    };
    (maybe_addr, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (addr, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (bits256, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (bits512, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (boolean, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (cell, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
    (child, $v:expr) => {
        $crate::json::ToJson::to_json($v)
    };
    (maybe_child, $v:expr) => {
        $v.as_ref()
            .map_or(::serde_json::Value::Null, $crate::json::ToJson::to_json)
    };
    (inline, $v:expr) => {
        $crate::json::ToJson::to_json($v)
    };
    (dict_u32, $v:expr) => {
        $crate::json::dict_json($v, |x| ::serde_json::Value::from(*x))
    };
    (dict_snake, $v:expr) => {
        $crate::json::dict_json($v, |x| ::serde_json::Value::from(x.clone()))
    };
    (dict_of, $v:expr) => {
        $crate::json::dict_json($v, $crate::json::ToJson::to_json)
    };
    (snake, $v:expr) => {
        ::serde_json::Value::from($v.clone())
    };
    (maybe_snake, $v:expr) => {
        $crate::json::JsonField::to_json_value($v)
    };
}

macro_rules! tlb_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident $([opcode = $op:expr])? {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $kind:ident $(($arg:expr))? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::codec::CellCodec for $name {
            fn store(
                &self,
                b: &mut ::tonlib_core::cell::CellBuilder,
            ) -> Result<(), $crate::error::CodecError> {
                $( $crate::codec::store_opcode(b, $op)?; )?
                $( tlb_store_field!($kind $(($arg))?, b, &self.$field); )*
                Ok(())
            }

            fn load(
                p: &mut ::tonlib_core::cell::CellParser<'_>,
            ) -> Result<Self, $crate::error::CodecError> {
                $( $crate::codec::load_opcode(p, $op)?; )?
                Ok(Self { $( $field: tlb_load_field!($kind $(($arg))?, p), )* })
            }
        }

        impl $crate::json::ToJson for $name {
            fn to_json(&self) -> ::serde_json::Value {
                let mut m = ::serde_json::Map::new();
                $( m.insert(stringify!($field).to_owned(), tlb_json_field!($kind $(($arg))?, &self.$field)); )*
                ::serde_json::Value::Object(m)
            }
        }
    };
}
