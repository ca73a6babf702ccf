"""GS1 identifiers (GTIN, GLN, the GS1 AI table), China's USCC and GS1 Digital Link URIs.

What lives here:

- ``gs1_check_digit``, ``normalize_gtin``, ``is_valid_gtin``, ``normalize_gln``,
  ``is_valid_gln``: the GS1 mod-10 keys (GS1 General Specifications §7.9), from
  :mod:`suyuan.interop.gs1_keys` (what the event kinds need, without the rest of this module).
- ``validate_uscc``: the 18-character 统一社会信用代码 with its GB 32100-2015 check character.
- ``APPLICATION_IDENTIFIERS``: the GS1 Application Identifier table with each AI's format,
  check routines, pairing rules and Digital Link role (primary key, key qualifier, data attribute).
- ``DigitalLink``, ``parse_digital_link``: GS1 Digital Link URI syntax (uncompressed form,
  GS1 Digital Link Standard: URI Syntax 1.2+): ``/01/<gtin>/22/<cpv>/10/<lot>/21/<serial>``
  in the path, data attributes in the query string.
- ``parse_element_string``, ``element_string``, ``unbracketed_element_string``: the bracketed
  ``(01)…(10)…`` form people read and the FNC1-separated form barcodes carry.

Every rejection is a ``MalformedInput`` whose message says what is wrong and, where it can,
how to fix it: these messages reach cooperative clerks through forms and developers through
the API.

The behaviour follows the GS1 Barcode Syntax Engine (``gs1/gs1-syntax-engine``, ``dl.c``), whose
test cases the project's tests run as a corpus; the AI table is the GS1 Barcode Syntax
Dictionary. Checks against external code lists (ISO 3166 countries, ISO 4217 currencies, UN/ECE
package types, coupon layouts) test the shape only, not list membership; the IBAN check is full.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass
from itertools import combinations
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from suyuan.errors import MalformedInput
from suyuan.interop.gs1_keys import (
    _DIGITS,
    _describe_char,
    _first_outside,
    gs1_check_digit,
    is_valid_gln,
    is_valid_gtin,
    normalize_gln,
    normalize_gtin,
)

__all__ = [
    "APPLICATION_IDENTIFIERS",
    "CANONICAL_STEM",
    "ApplicationIdentifier",
    "Component",
    "DigitalLink",
    "application_identifier",
    "element_string",
    "gs1_check_digit",
    "is_valid_gln",
    "is_valid_gtin",
    "normalize_gln",
    "normalize_gtin",
    "normalize_link_type",
    "parse_digital_link",
    "parse_element_string",
    "unbracketed_element_string",
    "validate_uscc",
]

CANONICAL_STEM = "https://id.gs1.org"
"""GS1's own resolver; the stem of the canonical form of any GS1 Digital Link URI."""

GS1_VOCABULARY = "https://ref.gs1.org/voc/"
"""Namespace of the GS1 Web Vocabulary, where the ``gs1:`` link types (``gs1:pip`` …) live."""

# GS1 AI encodable character sets (GS1 General Specifications §7.11, figures 7.11-1 to -3).
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
CSET39 = frozenset("#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
CSET64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_CSETS: Mapping[str, tuple[frozenset[str], str]] = {
    "N": (_DIGITS, "digits 0-9"),
    "X": (CSET82, "GS1 character set 82 (A-Z a-z 0-9 and !\"%&'()*+,-./:;<=>?_)"),
    "Y": (CSET39, "GS1 character set 39 (A-Z 0-9 # - /)"),
    "Z": (CSET64, "URI-safe base64 (A-Z a-z 0-9 - _)"),
}

# --------------------------------------------------------------------------------------------
# China: 统一社会信用代码 (Unified Social Credit Code), GB 32100-2015

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # W_i = 3^(i-1) mod 31


def _uscc_check_character(first17: str) -> str:
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Check a 统一社会信用代码 (GB 32100-2015) and return it trimmed and upper-cased.

    18 characters from ``0-9 A-H J-N P-R T U W-Y``: registration authority (1), organisation
    category (1), administrative division code of the registering office (6 digits),
    organisation code (9), check character (1, mod 31 with weights 3^(i-1) mod 31).
    """
    if not isinstance(value, str):
        raise MalformedInput(f"统一社会信用代码 must be text, not {type(value).__name__}")
    text = unicodedata.normalize("NFKC", value).strip().upper()
    what = "统一社会信用代码 (USCC)"
    if len(text) != 18:
        raise MalformedInput(f"{what} '{text}' has {len(text)} characters; it must have exactly 18")
    for i, char in enumerate(text):
        if char not in _USCC_VALUES:
            hint = " (I, O, S, V and Z are never used)" if char in "IOSVZ" else ""
            raise MalformedInput(
                f"{what} '{text}' contains {_describe_char(char)} at position {i + 1}{hint}"
            )
    if not text[2:8].isdigit():
        raise MalformedInput(
            f"{what} '{text}': characters 3-8 are an administrative division code and must "
            f"be digits, not '{text[2:8]}'"
        )
    expected = _uscc_check_character(text[:17])
    if text[17] != expected:
        raise MalformedInput(
            f"{what} '{text}' check character should be {expected}, not {text[17]} "
            f"(mistyped character?)"
        )
    return text


# --------------------------------------------------------------------------------------------
# The AI table
#
# Transcribed from the GS1 Barcode Syntax Dictionary (gs1/gs1-syntax-engine,
# src/c-lib/gs1-syntax-dictionary.txt; Apache-2.0, (c) GS1 AISBL, BWIPP and Zint), which
# restates the AI table of the GS1 General Specifications in a machine-readable form. Kept in
# that line format so an update is a diff against upstream:
#
#   AI[-AI]  flags  components  attributes  # title
#
#   flags: "*" fixed length, no FNC1 separator needed after it; "!" a GS1 identification key;
#          "?" permitted as a GS1 Digital Link data attribute (query string); "-" none.
#   components: N digits, X CSET 82, Y CSET 39, Z URI-safe base64; "N13" fixed, "X..20" 1-20,
#          "[…]" optional; ",name" adds a check routine (see _LINTERS).
#   req=a,b+c  needs (a) or (b with c) alongside; repeated req= clauses must all hold.
#   ex=a,31nn  must not appear with (a) or any AI matching 31nn.
#   dlpkey[=22,10,21|235]  a Digital Link primary key, with its ordered optional qualifier
#          sequences ("|" separates alternatives that must not be mixed).

_SYNTAX_DICTIONARY = """
00        *!?  N18,csum,gcppos2                  dlpkey                                # SSCC
01        *!?  N14,csum,gcppos2                  ex=255,37 dlpkey=22,10,21|235         # GTIN
02        *?   N14,csum,gcppos2                  ex=01,03 req=37                       # CONTENT
03        *    N14,csum,gcppos2                  ex=01,02,37                           # MTO GTIN
10        ?    X..20                             req=01,02,03,8006,8026                # BATCH/LOT
11        *?   N6,yymmd0                         req=01,02,03,8006,8026                # PROD DATE
12        *?   N6,yymmd0                         req=8020                              # DUE DATE
13        *?   N6,yymmd0                         req=01,02,03,8006,8026                # PACK DATE
15        *?   N6,yymmd0                         req=01,02,03,8006,8026                # BEST BEFORE or BEST BY
16        *?   N6,yymmd0                         req=01,02,03,8006,8026                # SELL BY
17        *?   N6,yymmd0                         req=01,02,03,255,8006,8026            # USE BY or EXPIRY
20        *?   N2                                req=01,02,8006,8026                   # VARIANT
21        -    X..20                             req=01,03,8006 ex=235                 # SERIAL
22        -    X..20                             req=01                                # CPV
235       -    X..28                             req=01                                # TPX
240       ?    X..30                             req=01,02,8006,8026                   # ADDITIONAL ID
241       ?    X..30                             req=01,02,8006,8026                   # CUST. PART No.
242       ?    N..6                              req=01,02,8006,8026                   # MTO VARIANT
243       ?    X..20                             req=01                                # PCN
250       ?    X..30                             req=01,8006 req=21                    # SECONDARY SERIAL
251       ?    X..30                             req=01,8006                           # REF. TO SOURCE
253       !?   N13,csum,gcppos1 [X..17]          dlpkey                                # GDTI
254       -    X..20                             req=414                               # GLN EXTENSION COMPONENT
255       !?   N13,csum,gcppos1 [N..12]          dlpkey ex=01,02,415,8006,8020,8026    # GCN
30        ?    N..8                              req=01,02                             # VAR. COUNT
3100-3105 *?   N6                                req=01,02 ex=310n                     # NET WEIGHT (kg)
3110-3115 *?   N6                                req=01,02 ex=311n                     # LENGTH (m)
3120-3125 *?   N6                                req=01,02 ex=312n                     # WIDTH (m)
3130-3135 *?   N6                                req=01,02 ex=313n                     # HEIGHT (m)
3140-3145 *?   N6                                req=01,02 ex=314n                     # AREA (m²)
3150-3155 *?   N6                                req=01,02 ex=315n                     # NET VOLUME (l)
3160-3165 *?   N6                                req=01,02 ex=316n                     # NET VOLUME (m³)
3200-3205 *?   N6                                req=01,02 ex=320n                     # NET WEIGHT (lb)
3210-3215 *?   N6                                req=01,02 ex=321n                     # LENGTH (in)
3220-3225 *?   N6                                req=01,02 ex=322n                     # LENGTH (ft)
3230-3235 *?   N6                                req=01,02 ex=323n                     # LENGTH (yd)
3240-3245 *?   N6                                req=01,02 ex=324n                     # WIDTH (in)
3250-3255 *?   N6                                req=01,02 ex=325n                     # WIDTH (ft)
3260-3265 *?   N6                                req=01,02 ex=326n                     # WIDTH (yd)
3270-3275 *?   N6                                req=01,02 ex=327n                     # HEIGHT (in)
3280-3285 *?   N6                                req=01,02 ex=328n                     # HEIGHT (ft)
3290-3295 *?   N6                                req=01,02 ex=329n                     # HEIGHT (yd)
3300-3305 *?   N6                                req=00,01 ex=330n                     # GROSS WEIGHT (kg)
3310-3315 *?   N6                                req=00,01 ex=331n                     # LENGTH (m), log
3320-3325 *?   N6                                req=00,01 ex=332n                     # WIDTH (m), log
3330-3335 *?   N6                                req=00,01 ex=333n                     # HEIGHT (m), log
3340-3345 *?   N6                                req=00,01 ex=334n                     # AREA (m²), log
3350-3355 *?   N6                                req=00,01 ex=335n                     # VOLUME (l), log
3360-3365 *?   N6                                req=00,01 ex=336n                     # VOLUME (m³), log
3370-3375 *?   N6                                req=01 ex=337n                        # KG PER m²
3400-3405 *?   N6                                req=00,01 ex=340n                     # GROSS WEIGHT (lb)
3410-3415 *?   N6                                req=00,01 ex=341n                     # LENGTH (in), log
3420-3425 *?   N6                                req=00,01 ex=342n                     # LENGTH (ft), log
3430-3435 *?   N6                                req=00,01 ex=343n                     # LENGTH (yd), log
3440-3445 *?   N6                                req=00,01 ex=344n                     # WIDTH (in), log
3450-3455 *?   N6                                req=00,01 ex=345n                     # WIDTH (ft), log
3460-3465 *?   N6                                req=00,01 ex=346n                     # WIDTH (yd), log
3470-3475 *?   N6                                req=00,01 ex=347n                     # HEIGHT (in), log
3480-3485 *?   N6                                req=00,01 ex=348n                     # HEIGHT (ft), log
3490-3495 *?   N6                                req=00,01 ex=349n                     # HEIGHT (yd), log
3500-3505 *?   N6                                req=01,02 ex=350n                     # AREA (in²)
3510-3515 *?   N6                                req=01,02 ex=351n                     # AREA (ft²)
3520-3525 *?   N6                                req=01,02 ex=352n                     # AREA (yd²)
3530-3535 *?   N6                                req=00,01 ex=353n                     # AREA (in²), log
3540-3545 *?   N6                                req=00,01 ex=354n                     # AREA (ft²), log
3550-3555 *?   N6                                req=00,01 ex=355n                     # AREA (yd²), log
3560-3565 *?   N6                                req=01,02 ex=356n                     # NET WEIGHT (t oz)
3570-3575 *?   N6                                req=01,02 ex=357n                     # NET VOLUME (oz)
3600-3605 *?   N6                                req=01,02 ex=360n                     # NET VOLUME (qt)
3610-3615 *?   N6                                req=01,02 ex=361n                     # NET VOLUME (gal.)
3620-3625 *?   N6                                req=00,01 ex=362n                     # VOLUME (qt), log
3630-3635 *?   N6                                req=00,01 ex=363n                     # VOLUME (gal.), log
3640-3645 *?   N6                                req=01,02 ex=364n                     # VOLUME (in³)
3650-3655 *?   N6                                req=01,02 ex=365n                     # VOLUME (ft³)
3660-3665 *?   N6                                req=01,02 ex=366n                     # VOLUME (yd³)
3670-3675 *?   N6                                req=00,01 ex=367n                     # VOLUME (in³), log
3680-3685 *?   N6                                req=00,01 ex=368n                     # VOLUME (ft³), log
3690-3695 *?   N6                                req=00,01 ex=369n                     # VOLUME (yd³), log
37        ?    N..8                              req=00 req=02,8026                    # COUNT
3900-3909 ?    N..15                             req=255,8020 ex=390n,391n,394n,8111   # AMOUNT
3910-3919 ?    N3,iso4217 N..15                  req=8020 ex=391n                      # AMOUNT
3920-3929 ?    N..15                    req=01 req=30,31nn,32nn,35nn,36nn ex=392n,393n # PRICE
3930-3939 ?    N3,iso4217 N..15             req=30,31nn,32nn,35nn,36nn ex=393n         # PRICE
3940-3943 ?    N4                                req=255 ex=394n,8111                  # PRCNT OFF
3950-3955 ?    N6          req=30,31nn,32nn,35nn,36nn ex=392n,393n,395n,8005           # PRICE/UoM
400       ?    X..30                                                                   # ORDER NUMBER
401       !?   X..30,gcppos1                     dlpkey                                # GINC
402       !?   N17,csum,gcppos1                  dlpkey                                # GSIN
403       ?    X..30                             req=00                                # ROUTE
410       *?   N13,csum,gcppos1                                                        # SHIP TO LOC
411       *?   N13,csum,gcppos1                                                        # BILL TO
412       *?   N13,csum,gcppos1                                                        # PURCHASE FROM
413       *?   N13,csum,gcppos1                                                        # SHIP FOR LOC
414       *!?  N13,csum,gcppos1                  dlpkey=254|7040                       # LOC No.
415       *?   N13,csum,gcppos1                  req=8020 dlpkey=8020                  # PAY TO
416       *?   N13,csum,gcppos1                                                        # PROD/SERV LOC
417       *?   N13,csum,gcppos1                  dlpkey=7040                           # PARTY
420       ?    X..20                             ex=421                                # SHIP TO POST
421       ?    N3,iso3166 X..9                   ex=4307                               # SHIP TO POST
422       ?    N3,iso3166                        req=01,02,8006,8026 ex=426            # ORIGIN
423       ?    N3,iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 req=01,02 ex=426 # COUNTRY - INITIAL PROCESS
424       ?    N3,iso3166                        req=01,02 ex=426                      # COUNTRY - PROCESS
425       ?    N3,iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 req=01,02 ex=426 # COUNTRY - DISASSEMBLY
426       ?    N3,iso3166                        req=01,02                             # COUNTRY - FULL PROCESS
427       ?    X..3                              req=01,02 req=422                     # ORIGIN SUBDIVISION
4300      ?    X..35,pcenc                       req=00                                # SHIP TO COMP
4301      ?    X..35,pcenc                       req=00                                # SHIP TO NAME
4302      ?    X..70,pcenc                       req=00                                # SHIP TO ADD1
4303      ?    X..70,pcenc                       req=4302                              # SHIP TO ADD2
4304      ?    X..70,pcenc                       req=00                                # SHIP TO SUB
4305      ?    X..70,pcenc                       req=00                                # SHIP TO LOC
4306      ?    X..70,pcenc                       req=00                                # SHIP TO REG
4307      ?    X2,iso3166alpha2                  req=00                                # SHIP TO COUNTRY
4308      ?    X..30                             req=00                                # SHIP TO PHONE
4309      ?    N10,latitude N10,longitude        req=00                                # SHIP TO GEO
4310      ?    X..35,pcenc                       req=00                                # RTN TO COMP
4311      ?    X..35,pcenc                       req=00                                # RTN TO NAME
4312      ?    X..70,pcenc                       req=00                                # RTN TO ADD1
4313      ?    X..70,pcenc                       req=4312                              # RTN TO ADD2
4314      ?    X..70,pcenc                       req=00                                # RTN TO SUB
4315      ?    X..70,pcenc                       req=00                                # RTN TO LOC
4316      ?    X..70,pcenc                       req=00                                # RTN TO REG
4317      ?    X2,iso3166alpha2                  req=00                                # RTN TO COUNTRY
4318      ?    X..20                             req=00                                # RTN TO POST
4319      ?    X..30                             req=00                                # RTN TO PHONE
4320      ?    X..35,pcenc                       req=00                                # SRV DESCRIPTION
4321      ?    N1,yesno                          req=00                                # DANGEROUS GOODS
4322      ?    N1,yesno                          req=00                                # AUTH TO LEAVE
4323      ?    N1,yesno                          req=00                                # SIG REQUIRED
4324      ?    N6,yymmd0 N4,hhmi                 req=00                                # NOT BEF DEL DT
4325      ?    N6,yymmd0 N4,hhmi                 req=00                                # NOT AFT DEL DT
4326      ?    N6,yymmdd                         req=00                                # REL DATE
4330      ?    N6 [X1],hyphen                    req=00 ex=4331                        # MAX TEMP F.
4331      ?    N6 [X1],hyphen                    req=00 ex=4330                        # MAX TEMP C.
4332      ?    N6 [X1],hyphen                    req=00 ex=4333                        # MIN TEMP F.
4333      ?    N6 [X1],hyphen                    req=00 ex=4332                        # MIN TEMP C.
7001      ?    N13                               req=01,02,8006,8026                   # NSN
7002      ?    X..30                             req=01,02                             # MEAT CUT
7003      ?    N6,yymmdd N4,hhmi                 req=01,02                             # EXPIRY TIME
7004      ?    N..4                              req=01 req=10                         # ACTIVE POTENCY
7005      ?    X..12                             req=01,02                             # CATCH AREA
7006      ?    N6,yymmdd                         req=01,02                             # FIRST FREEZE DATE
7007      ?    N6,yymmdd [N6],yymmdd             req=01,02                             # HARVEST DATE
7008      ?    X..3                              req=01,02                             # AQUATIC SPECIES
7009      ?    X..10                             req=01,02                             # FISHING GEAR TYPE
7010      ?    X..2                              req=01,02                             # PROD METHOD
7011      ?    N6,yymmdd [N4],hhmi               req=01,02                             # TEST BY DATE
7020      ?    X..20                             req=01,8006 req=416                   # REFURB LOT
7021      ?    X..20                             req=01,8006                           # FUNC STAT
7022      ?    X..20                             req=7021                              # REV STAT
7023      ?    X..30,gcppos1                                                           # GIAI - ASSEMBLY
7030      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 0
7031      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 1
7032      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 2
7033      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 3
7034      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 4
7035      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 5
7036      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 6
7037      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 7
7038      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 8
7039      ?    N3,iso3166999 X..27               req=01,02                             # PROCESSOR # 9
7040      -    N1 X1 X1 X1,importeridx                                                 # UIC+EXT
7041      -    X..4,packagetype                  req=00                                # UFRGT UNIT TYPE
710       ?    X..20                             req=01                                # NHRN PZN
711       ?    X..20                             req=01                                # NHRN CIP
712       ?    X..20                             req=01                                # NHRN CN
713       ?    X..20                             req=01                                # NHRN DRN
714       ?    X..20                             req=01                                # NHRN AIM
715       ?    X..20                             req=01                                # NHRN NDC
716       ?    X..20                             req=01                                # NHRN AIC
7230      ?    X2 X..28                          req=01,8004                           # CERT # 1
7231      ?    X2 X..28                          req=01,8004                           # CERT # 2
7232      ?    X2 X..28                          req=01,8004                           # CERT # 3
7233      ?    X2 X..28                          req=01,8004                           # CERT # 4
7234      ?    X2 X..28                          req=01,8004                           # CERT # 5
7235      ?    X2 X..28                          req=01,8004                           # CERT # 6
7236      ?    X2 X..28                          req=01,8004                           # CERT # 7
7237      ?    X2 X..28                          req=01,8004                           # CERT # 8
7238      ?    X2 X..28                          req=01,8004                           # CERT # 9
7239      ?    X2 X..28                          req=01,8004                           # CERT # 10
7240      ?    X..20                             req=01,8006                           # PROTOCOL
7241      ?    N2,mediatype                      req=8017,8018                         # AIDC MEDIA TYPE
7242      ?    X..25                             req=8017,8018                         # VCN
7250      ?    N8,yyyymmdd                       req=8018 ex=7251                      # DOB
7251      ?    N8,yyyymmdd N4,hhmi               req=8018 ex=7250                      # DOB TIME
7252      ?    N1,iso5218                        req=8018                              # BIO SEX
7253      ?    X..40,pcenc                       req=8017,8018 ex=7256,7259            # FAMILY NAME
7254      ?    X..40,pcenc                       req=8017,8018 ex=7256,7259            # GIVEN NAME
7255      ?    X..10                             req=8017,8018 ex=7256,7259            # SUFFIX
7256      ?    X..90,pcenc                       req=8017,8018                         # FULL NAME
7257      ?    X..70,pcenc                       req=8018                              # PERSON ADDR
7258      ?    X3,posinseqslash                  req=8018+7259                         # BIRTH SEQUENCE
7259      ?    X..40,pcenc                       req=8018 ex=7256                      # BABY
8001      ?    N4,nonzero N5,nonzero N3,nonzero N1,winding N1  req=01                  # DIMENSIONS
8002      ?    X..20                                                                   # CMT No.
8003      !?   N1,zero N13,csum,gcppos1 [X..16]  dlpkey                                # GRAI
8004      !?   X..30,gcppos1                     dlpkey=7040                           # GIAI
8005      ?    N6                                req=01,02                             # PRICE PER UNIT
8006      ?    N14,csum,gcppos2 N4,pieceoftotal  ex=01,37 dlpkey=22,10,21              # ITIP
8007      ?    X..34,iban                        req=415                               # IBAN
8008      ?    N6,yymmdd N2,hh [N2],mi [N2],ss   req=01,02                             # PROD TIME
8009      ?    X..50                             req=00,01                             # OPTSEN
8010      !?   Y..30,gcppos1                     dlpkey=8011                           # CPID
8011      -    N..12,nozeroprefix                req=8010                              # CPID SERIAL
8012      ?    X..20                             req=01,8006                           # VERSION
8013      !?   X..25,csumalpha,gcppos1           dlpkey                                # GMN
8014      -    X..25,csumalpha,gcppos1,hasnondigit  req=01                             # MUDI
8017      !?   N18,csum,gcppos1                  ex=8018 dlpkey=8019                   # GSRN - PROVIDER
8018      !?   N18,csum,gcppos1                  ex=8017 dlpkey=8019                   # GSRN - RECIPIENT
8019      -    N..10                             req=8017,8018                         # SRIN
8020      -    X..25                             req=415                               # REF No.
8026      ?    N14,csum,gcppos2 N4,pieceoftotal  req=37 ex=02,8006                     # ITIP CONTENT
8030      ?    Z..90       req=00,01+21,253,255,8003,8004,8006+21,8010+8011,8017,8018  # DIGSIG
8110      ?    X..70,couponcode                                                        # COUPON CODE
8111      ?    N4                                req=255                               # POINTS
8112      ?    X..70,couponposoffer                                                    # COUPON POS OFFER
8200      -    X..70                             req=01                                # PRODUCT URL
90        ?    X..30                                                                   # INTERNAL
91-99     ?    X..90                                                                   # INTERNAL
"""

# Friendlier names for the AIs a traceability clerk meets, used in error messages.
_FRIENDLY = {
    "00": "SSCC (AI 00)",
    "01": "GTIN (AI 01)",
    "10": "lot (AI 10)",
    "11": "production date (AI 11)",
    "13": "packaging date (AI 13)",
    "15": "best-before date (AI 15)",
    "17": "expiry date (AI 17)",
    "21": "serial (AI 21)",
    "22": "consumer product variant (AI 22)",
    "235": "third-party serial (AI 235)",
    "414": "GLN (AI 414)",
    "7007": "harvest date (AI 7007)",
}


@dataclass(frozen=True)
class Component:
    """One part of an AI's value: a character set, a length range and check routines."""

    cset: str
    """``N`` digits, ``X`` CSET 82, ``Y`` CSET 39, ``Z`` URI-safe base64."""
    min_length: int
    max_length: int
    optional: bool
    checks: tuple[str, ...]
    """Names of check routines (``csum``, ``yymmd0`` …) applied to this part."""


@dataclass(frozen=True)
class ApplicationIdentifier:
    """A GS1 Application Identifier: what its value looks like and how it combines with others."""

    ai: str
    title: str
    """The GS1 data title, e.g. ``BATCH/LOT``."""
    components: tuple[Component, ...]
    fnc1: bool
    """Whether a separator (FNC1, GS) must follow it before another AI: variable length."""
    is_identification_key: bool
    is_dl_data_attribute: bool
    """Whether it may appear in a Digital Link query string (``?17=261231``)."""
    dl_qualifier_paths: tuple[tuple[str, ...], ...] | None
    """``None`` unless a Digital Link primary key; else its alternative ordered qualifier lists."""
    requires: tuple[tuple[tuple[str, ...], ...], ...] = ()
    """Each clause: alternatives, each a group of AI patterns that must all be present."""
    excludes: tuple[str, ...] = ()
    unknown: bool = False
    """A placeholder for an AI missing from the table (only when unknown AIs are permitted)."""

    @property
    def min_length(self) -> int:
        return sum(c.min_length for c in self.components if not c.optional)

    @property
    def max_length(self) -> int:
        return sum(c.max_length for c in self.components)

    @property
    def is_dl_primary_key(self) -> bool:
        return self.dl_qualifier_paths is not None

    @property
    def is_dl_key_qualifier(self) -> bool:
        return self.ai in _KEY_QUALIFIERS

    @property
    def label(self) -> str:
        """How messages name it: a friendly name for common AIs, else ``AI (nn) TITLE``."""
        return _FRIENDLY.get(self.ai, f"AI ({self.ai}) {self.title}".rstrip())


_COMPONENT = re.compile(r"(\[)?([NXYZ])(\.\.)?([0-9]{1,2})(\])?((?:,[a-z0-9]+)*)\Z")


def _parse_component(token: str) -> Component:
    match = _COMPONENT.match(token)
    if not match:  # pragma: no cover - guards edits to the table above
        raise ValueError(f"bad component {token!r} in the AI table")
    opening, cset, variable, length, closing, checks = match.groups()
    if bool(opening) != bool(closing):  # pragma: no cover
        raise ValueError(f"unbalanced brackets in {token!r}")
    size = int(length)
    return Component(
        cset=cset,
        min_length=1 if variable else size,
        max_length=size,
        optional=bool(opening),
        checks=tuple(checks.split(",")[1:]),
    )


def _parse_table(text: str) -> dict[str, ApplicationIdentifier]:
    table: dict[str, ApplicationIdentifier] = {}
    for line in text.strip().splitlines():
        body, _, title = line.partition("#")
        tokens = body.split()
        ais, flags, rest = tokens[0], tokens[1], tokens[2:]
        components = tuple(_parse_component(t) for t in rest if t[0].isupper() or t[0] == "[")
        attrs = [t for t in rest if not (t[0].isupper() or t[0] == "[")]
        requires: list[tuple[tuple[str, ...], ...]] = []
        excludes: list[str] = []
        paths: tuple[tuple[str, ...], ...] | None = None
        for attr in attrs:
            name, _, value = attr.partition("=")
            if name == "req":
                requires.append(tuple(tuple(alt.split("+")) for alt in value.split(",")))
            elif name == "ex":
                excludes.extend(value.split(","))
            elif name == "dlpkey":
                paths = tuple(tuple(a.split(",")) for a in value.split("|")) if value else ((),)
            else:  # pragma: no cover
                raise ValueError(f"unknown attribute {attr!r} in the AI table")
        first, _, last = ais.partition("-")
        codes = [first]
        if last:
            codes = [first[:-1] + str(d) for d in range(int(first[-1]), int(last[-1]) + 1)]
        for code in codes:
            table[code] = ApplicationIdentifier(
                ai=code,
                title=title.strip(),
                components=components,
                fnc1="*" not in flags,
                is_identification_key="!" in flags,
                is_dl_data_attribute="?" in flags,
                dl_qualifier_paths=paths,
                requires=tuple(requires),
                excludes=tuple(excludes),
            )
    return table


_TABLE = _parse_table(_SYNTAX_DICTIONARY)
APPLICATION_IDENTIFIERS: Mapping[str, ApplicationIdentifier] = MappingProxyType(_TABLE)
"""Every AI of the GS1 General Specifications, by its digits."""

_KEY_QUALIFIERS = frozenset(
    q for entry in _TABLE.values() for path in entry.dl_qualifier_paths or () for q in path
)


def _all_dl_paths() -> frozenset[tuple[str, ...]]:
    """Every valid AI sequence of a Digital Link path: a key, then any ordered subset of one
    of its qualifier lists (``01``, ``01 10``, ``01 22 21``, ``01 235`` …)."""
    paths: set[tuple[str, ...]] = set()
    for entry in _TABLE.values():
        for qualifiers in entry.dl_qualifier_paths or ():
            for size in range(len(qualifiers) + 1):
                for subset in combinations(qualifiers, size):
                    paths.add((entry.ai, *subset))
    return frozenset(paths)


_DL_PATHS = _all_dl_paths()

# AI length by the first two digits: all AIs sharing a prefix have the same length, which is
# what lets an unbracketed element string be split without brackets.
_AI_LENGTH_BY_PREFIX = {code[:2]: len(code) for code in _TABLE}

# Value lengths predefined by the first two digits of an AI (GS1 General Specifications,
# figure 7.8.5-2): these AIs never need an FNC1 separator, even when not (yet) assigned.
_PREDEFINED_LENGTH = {"00": 18, "01": 14, "02": 14, "03": 14, "04": 16, "20": 2, "41": 13}
_PREDEFINED_LENGTH.update({str(p): 6 for p in range(11, 20)})
_PREDEFINED_LENGTH.update({str(p): 6 for p in range(31, 37)})


def _unknown_entry(code: str) -> ApplicationIdentifier:
    fixed = _PREDEFINED_LENGTH.get(code[:2])
    component = Component("X", fixed or 1, fixed or 90, False, ())
    return ApplicationIdentifier(
        ai=code,
        title="(not in the GS1 AI table)",
        components=(component,),
        fnc1=fixed is None,
        is_identification_key=False,
        is_dl_data_attribute=True,
        dl_qualifier_paths=None,
        unknown=True,
    )


def _lookup(code: str, *, permit_unknown: bool = False) -> ApplicationIdentifier | None:
    """The table entry for ``code``, a placeholder for a plausible unknown AI when permitted,
    or ``None``.

    A plausible unknown AI has 2-4 digits, neither starts nor is started by a known AI, and has
    the length every known AI with the same first two digits has.
    """
    if not 2 <= len(code) <= 4 or _first_outside(code, _DIGITS) is not None:
        return None
    entry = _TABLE.get(code)
    if entry is not None or not permit_unknown:
        return entry
    if any(code.startswith(known) or known.startswith(code) for known in _TABLE):
        return None
    implied = _AI_LENGTH_BY_PREFIX.get(code[:2])
    if implied is not None and implied != len(code):
        return None
    return _unknown_entry(code)


def application_identifier(ai: str) -> ApplicationIdentifier:
    """The table entry for ``ai`` (``"01"``, ``"3103"`` …); ``MalformedInput`` if there is none."""
    entry = _lookup(ai) if isinstance(ai, str) else None
    if entry is None:
        raise MalformedInput(f"({ai}) is not a GS1 Application Identifier")
    return entry


# --------------------------------------------------------------------------------------------
# Check routines ("linters") for AI value components. Each returns None when the component is
# good, else a short phrase saying what is wrong with it.

_Linter = Callable[[str], str | None]


def _lint_csum(part: str) -> str | None:
    expected = gs1_check_digit(part[:-1])
    if part[-1] != expected:
        return f"check digit should be {expected}, not {part[-1]}"
    return None


_CSET82_ORDER = (
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
_CSET32_ORDER = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_PRIMES = tuple(p for p in range(2, 600) if all(p % d for d in range(2, int(p**0.5) + 1)))


def _lint_csumalpha(part: str) -> str | None:
    """GS1 alphanumeric check character pair (GMN, MUDI): prime-weighted sum mod 1021."""
    if len(part) < 2:
        return "is too short to hold its two check characters"
    data, pair = part[:-2], part[-2:]
    if any(c not in _CSET32_ORDER for c in pair):
        return f"check characters '{pair}' must be from 2-9 and A-Z without I and O"
    total = (
        sum(_CSET82_ORDER.index(c) * _PRIMES[len(data) - 1 - i] for i, c in enumerate(data)) % 1021
    )
    expected = _CSET32_ORDER[total >> 5] + _CSET32_ORDER[total & 31]
    if pair != expected:
        return f"check characters should be {expected}, not {pair}"
    return None


def _lint_gcp(part: str) -> str | None:
    if len(part) < 4 or _first_outside(part[:4], _DIGITS) is not None:
        return "must start with a GS1 Company Prefix (at least 4 digits)"
    return None


def _lint_gcppos2(part: str) -> str | None:
    return _lint_gcp(part[1:])


def _valid_date(mm: int, dd: int, *, leap: bool, zero_day: bool) -> bool:
    if not 1 <= mm <= 12:
        return False
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mm - 1]
    return (zero_day and dd == 0) or 1 <= dd <= days


def _lint_yymmd0(part: str) -> str | None:
    # Two-digit years: within GS1's 50-year window every year divisible by 4 is a leap year.
    yy, mm, dd = int(part[:2]), int(part[2:4]), int(part[4:6])
    if not _valid_date(mm, dd, leap=yy % 4 == 0, zero_day=True):
        return "is not a date (YYMMDD; DD may be 00 for the end of the month)"
    return None


def _lint_yymmdd(part: str) -> str | None:
    yy, mm, dd = int(part[:2]), int(part[2:4]), int(part[4:6])
    if not _valid_date(mm, dd, leap=yy % 4 == 0, zero_day=False):
        return "is not a date (YYMMDD)"
    return None


def _lint_yyyymmdd(part: str) -> str | None:
    year, mm, dd = int(part[:4]), int(part[4:6]), int(part[6:8])
    if not _valid_date(mm, dd, leap=calendar.isleap(year), zero_day=False):
        return "is not a date (YYYYMMDD)"
    return None


def _range_check(low: int, high: int, what: str) -> _Linter:
    def check(part: str) -> str | None:
        return None if low <= int(part) <= high else f"is not {what}"

    return check


def _lint_hhmi(part: str) -> str | None:
    if int(part[:2]) > 23 or int(part[2:4]) > 59:
        return "is not a time of day (HHMM)"
    return None


def _lint_pieceoftotal(part: str) -> str | None:
    piece, total = int(part[:2]), int(part[2:])
    if not 1 <= piece <= total:
        return "must be a piece number then a total (PPTT), 1 <= piece <= total"
    return None


def _lint_posinseqslash(part: str) -> str | None:
    if not re.fullmatch(r"[1-9]/[1-9]", part) or part[0] > part[2]:
        return "must be a position in a sequence such as 1/2"
    return None


def _lint_pcenc(part: str) -> str | None:
    for match in re.finditer("%", part):
        hexes = part[match.start() + 1 : match.start() + 3]
        if len(hexes) != 2 or any(c not in "0123456789ABCDEFabcdef" for c in hexes):
            return "has a '%' that is not followed by two hexadecimal digits"
    return None


def _lint_iban(part: str) -> str | None:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", part):
        return "must be an IBAN: country code, two check digits, then letters and digits"
    digits = "".join(str(int(c, 36)) for c in part[4:] + part[:4])
    if int(digits) % 97 != 1:
        return "IBAN check digits are wrong"
    return None


def _shape(pattern: str, what: str) -> _Linter:
    compiled = re.compile(pattern)

    def check(part: str) -> str | None:
        return None if compiled.fullmatch(part) else f"is not {what}"

    return check


_LINTERS: Mapping[str, _Linter] = {
    "csum": _lint_csum,
    "csumalpha": _lint_csumalpha,
    "gcppos1": _lint_gcp,
    "gcppos2": _lint_gcppos2,
    "yymmd0": _lint_yymmd0,
    "yymmdd": _lint_yymmdd,
    "yyyymmdd": _lint_yyyymmdd,
    "hh": _range_check(0, 23, "an hour (00-23)"),
    "mi": _range_check(0, 59, "a minute (00-59)"),
    "ss": _range_check(0, 59, "a second (00-59)"),
    "hhmi": _lint_hhmi,
    "latitude": _range_check(0, 1_800_000_000, "a latitude (0 to 1800000000)"),
    "longitude": _range_check(0, 3_600_000_000, "a longitude (0 to 3600000000)"),
    "pieceoftotal": _lint_pieceoftotal,
    "posinseqslash": _lint_posinseqslash,
    "pcenc": _lint_pcenc,
    "iban": _lint_iban,
    "yesno": _shape("[01]", "0 (no) or 1 (yes)"),
    "zero": _shape("0", "0"),
    "nonzero": _shape(r"(?!0+\Z)[0-9]+", "a number other than zero"),
    "winding": _shape("[019]", "a winding direction (0, 1 or 9)"),
    "iso5218": _shape("[0129]", "an ISO/IEC 5218 sex code (0, 1, 2 or 9)"),
    "hyphen": _shape("-", "'-'"),
    "hasnondigit": _shape(r".*[^0-9].*", "allowed to be all digits"),
    "nozeroprefix": _shape(r"0|[1-9][0-9]*", "a number without leading zeros"),
    "importeridx": _shape(r"[-0-9A-Za-z_]", "an importer index (0-9 A-Z a-z - _)"),
    "mediatype": _shape(r"0[1-9]|10|[89][0-9]", "an AIDC media type (01-10 or 80-99)"),
    # Code lists: checked for shape only (see the module docstring).
    "iso3166": _shape(r"[0-9]{3}", "an ISO 3166 numeric country code"),
    "iso3166999": _shape(r"[0-9]{3}", "an ISO 3166 numeric country code or 999"),
    "iso3166alpha2": _shape(r"[A-Z]{2}", "an ISO 3166 two-letter country code"),
    "iso4217": _shape(r"[0-9]{3}", "an ISO 4217 numeric currency code"),
    "packagetype": _shape(r"[0-9A-Z]{1,4}", "a package type code"),
    "couponcode": _shape(r"[0-9]{1,70}", "a coupon code"),
    "couponposoffer": _shape(r"[0-9A-Z]{1,70}", "a coupon offer code"),
}


# --------------------------------------------------------------------------------------------
# Checking values and combinations of AIs


def _check_value(entry: ApplicationIdentifier, value: str, label: str | None = None) -> None:
    """Raise ``MalformedInput`` unless ``value`` is a valid value for ``entry``."""
    label = label or entry.label
    if not isinstance(value, str):
        raise MalformedInput(f"{label} must be text, not {type(value).__name__}")
    if not value:
        raise MalformedInput(f"{label} is empty")
    low, high = entry.min_length, entry.max_length
    if not low <= len(value) <= high:
        need = f"exactly {high}" if low == high else f"{low} to {high}"
        unit = "digits" if all(c.cset == "N" for c in entry.components) else "characters"
        raise MalformedInput(f"{label} must have {need} {unit}; '{value}' has {len(value)}")
    rest = value
    for component in entry.components:
        part, rest = rest[: component.max_length], rest[component.max_length :]
        if not part and component.optional:
            continue
        if len(part) < component.min_length:  # pragma: no cover - caught by the length check
            raise MalformedInput(f"{label} '{value}' is too short")
        allowed, described = _CSETS[component.cset]
        if component.cset == "Z":
            part = _check_base64_padding(part, label, value)
        bad = _first_outside(part, allowed)
        if bad is not None:
            position = len(value) - len(rest) - len(part) + bad + 1
            hint = ""
            if part[bad] == " ":
                hint = " (in a URI query string '+' means a space; write a plus sign as %2B)"
            raise MalformedInput(
                f"{label} '{value}' contains {_describe_char(part[bad])} at position "
                f"{position}; only {described} are allowed{hint}"
            )
        for name in component.checks:
            problem = _LINTERS[name](part)
            if problem is not None:
                subject = "" if part == value else f": part '{part}'"
                raise MalformedInput(f"{label} '{value}'{subject} {problem}")
    if rest:  # pragma: no cover - the length check above makes this unreachable
        raise MalformedInput(f"{label} '{value}' is too long")


def _check_base64_padding(part: str, label: str, value: str) -> str:
    """Strip optional ``=`` padding, checked as the GS1 Barcode Syntax Tests check it: at most
    two, and only when they bring the length to a multiple of 3."""
    data = part.rstrip("=")
    pads = len(part) - len(data)
    if pads > 2 or (pads and len(part) % 3):
        raise MalformedInput(f"{label} '{value}' has wrong base64 padding ('=' at the end)")
    return data


def _matches(pattern: str, code: str) -> bool:
    """AI pattern match: ``31nn`` matches any four-digit AI starting 31."""
    digits = pattern.rstrip("n")
    return len(code) == len(pattern) and code.startswith(digits)


def _check_associations(
    elements: Sequence[tuple[str, str]], entries: Sequence[ApplicationIdentifier]
) -> None:
    """GS1 pairing rules over a whole set of AIs: repeats agree, exclusions, requirements."""
    seen: dict[str, str] = {}
    for code, value in elements:
        if code in seen and seen[code] != value:
            raise MalformedInput(
                f"AI ({code}) appears twice with different values: '{seen[code]}' and '{value}'"
            )
        seen[code] = value
    codes = list(seen)
    by_code = {entry.ai: entry for entry in entries}
    for code in codes:
        entry = by_code[code]
        others = [c for c in codes if c != code]
        for pattern in entry.excludes:
            clash = next((c for c in others if _matches(pattern, c)), None)
            if clash is not None:
                raise MalformedInput(
                    f"{entry.label} cannot be used together with {by_code[clash].label}"
                )
        for clause in entry.requires:
            if not any(all(any(_matches(p, c) for c in others) for p in group) for group in clause):
                options = [" with ".join(f"({p})" for p in group) for group in clause]
                wanted = options[0] if len(options) == 1 else ", ".join(options[:-1])
                if len(options) > 1:
                    wanted += f" or {options[-1]}"
                raise MalformedInput(f"{entry.label} needs {wanted} alongside it")


# --------------------------------------------------------------------------------------------
# Element strings


def parse_element_string(
    text: str, *, permit_unknown_ais: bool = False, check_pairs: bool = True
) -> list[tuple[str, str]]:
    """Parse the bracketed form ``(01)09506000134352(10)ABC`` into ``[("01", …), ("10", …)]``.

    A ``(`` inside a value is written ``\\(``. Every value is checked against its AI's format;
    with ``check_pairs`` the GS1 pairing rules are checked too (a lot needs a GTIN alongside,
    a GTIN cannot be paired with a COUNT …). Repeats of an AI must carry the same value.
    """
    if not isinstance(text, str):
        raise MalformedInput(f"an element string must be text, not {type(text).__name__}")
    if not text:
        raise MalformedInput("the element string is empty")
    elements: list[tuple[str, str]] = []
    entries: list[ApplicationIdentifier] = []
    pos = 0
    while pos < len(text):
        if text[pos] != "(":
            raise MalformedInput(
                f"expected '(' and an AI at position {pos + 1} of '{text}', "
                f"found {_describe_char(text[pos])}"
            )
        close = text.find(")", pos + 1)
        if close < 0:
            raise MalformedInput(f"the AI that starts at position {pos + 1} has no closing ')'")
        code = text[pos + 1 : close]
        entry = _lookup(code, permit_unknown=permit_unknown_ais)
        if entry is None:
            raise MalformedInput(f"({code}) is not a GS1 Application Identifier")
        value_chars: list[str] = []
        pos = close + 1
        while pos < len(text) and text[pos] != "(":
            if text[pos] == "\\" and text[pos + 1 : pos + 2] == "(":
                value_chars.append("(")
                pos += 2
            else:
                value_chars.append(text[pos])
                pos += 1
        value = "".join(value_chars)
        _check_value(entry, value)
        elements.append((code, value))
        entries.append(entry)
    if check_pairs:
        _check_associations(elements, entries)
    return elements


def element_string(elements: Iterable[tuple[str, str]]) -> str:
    """The bracketed form ``(01)…(10)…`` of AI/value pairs (``(`` in values as ``\\(``)."""
    return "".join(f"({code})" + value.replace("(", "\\(") for code, value in elements)


def unbracketed_element_string(
    elements: Iterable[tuple[str, str]], *, fnc1: str = "^", permit_unknown_ais: bool = False
) -> str:
    """The form a GS1 barcode carries: FNC1 first, then AIs and values, with ``fnc1`` only
    after a variable-length value that is followed by another AI.

    Pass ``fnc1="\\x1d"`` (GS) for what a scanner transmits; ``^`` is the syntax engine's notation.
    """
    out = [fnc1]
    separate = False
    for code, value in elements:
        entry = _lookup(code, permit_unknown=permit_unknown_ais)
        if entry is None:
            raise MalformedInput(f"({code}) is not a GS1 Application Identifier")
        if separate:
            out.append(fnc1)
        out.append(code + value)
        separate = entry.fnc1
    return "".join(out)


# --------------------------------------------------------------------------------------------
# GS1 Digital Link

_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
_HOST_CHARS = _URI_CHARS - frozenset("_~?#@!$&'()*+,;=%")
_SCHEMES = ("https://", "http://", "HTTPS://", "HTTP://")

# Deprecated short names that early Digital Link URIs used instead of AI digits.
_CONVENIENCE_ALPHAS = {
    "cpid": "8010", "cpsn": "8011", "cpv": "22", "gcn": "255", "gdti": "253", "giai": "8004",
    "ginc": "401", "gln": "414", "glnx": "254", "gmn": "8013", "grai": "8003", "gsin": "402",
    "gsrn": "8018", "gsrnp": "8017", "gtin": "01", "itip": "8006", "lot": "10", "party": "417",
    "refno": "8020", "ser": "21", "srin": "8019", "sscc": "00",
}  # fmt: skip

_GTIN_QUALIFIER_FIELDS = {"22": "cpv", "10": "lot", "21": "serial", "235": "tpx"}


def _describe_paths(key: str) -> str:
    """What may follow a primary key in the path, for error messages."""
    paths = [path for path in _TABLE[key].dl_qualifier_paths or () if path]
    if not paths:
        return f"a ({key}) key takes no qualifiers in the path"
    options = [
        " ".join(f"/{q}/…" for q in path)
        + (" (in this order, each optional)" if len(path) > 1 else "")
        for path in paths
    ]
    mix = ", not a mix of these" if len(paths) > 1 else ""
    return f"after /{key}/… the path may hold only " + " or ".join(options) + mix


def _percent_decode(text: str, *, query: bool, where: str) -> str:
    """Percent-decoding as GS1 Digital Link does it: ``+`` is a space only in the query string,
    a ``%`` not followed by two hex digits is a literal ``%``, and an encoded NUL is refused."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%" and _is_hex(text[i + 1 : i + 3]):
            byte = int(text[i + 1 : i + 3], 16)
            if byte == 0:
                raise MalformedInput(f"{where} contains an encoded NUL character (%00)")
            out.append(byte)
            i += 3
            continue
        out.extend(b" " if query and char == "+" else char.encode("ascii"))
        i += 1
    return out.decode("utf-8", errors="replace")


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789ABCDEFabcdef" for c in pair)


def _percent_encode(value: str) -> str:
    # Everything but the URI unreserved characters is escaped, "+" included: it means a
    # space in query strings and GS1 prefers %2B in the path too.
    return quote(value, safe="")


@dataclass(frozen=True)
class DigitalLink:
    """A GS1 Digital Link: a primary key, its qualifiers and data attributes.

    The project's lots are ``DigitalLink(gtin, lot=…, serial=…)``; the GTIN is stored as
    GTIN-14 whatever form it was given in. Any other primary key (SSCC, GLN, GIAI …) is
    ``DigitalLink(None, key=("00", sscc), qualifiers=…)``. ``attributes`` are the query-string
    AIs in order. Construction checks everything, so every ``DigitalLink`` has a valid URI and
    ``parse_digital_link(link.uri(base)) == link``.
    """

    gtin: str | None
    lot: str | None = None
    serial: str | None = None
    cpv: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    tpx: str | None = None
    """Third-party controlled serial (AI 235), an alternative to cpv/lot/serial in the path."""
    key: tuple[str, str] | None = None
    """Primary key other than a GTIN, as (AI, value), e.g. ``("414", gln)``."""
    qualifiers: tuple[tuple[str, str], ...] = ()
    """Path qualifiers of ``key`` as (AI, value) pairs, in path order."""
    permit_unknown_ais: InitVar[bool] = False

    def __post_init__(self, permit_unknown_ais: bool) -> None:
        # Normalise containers first so the frozen object stays hashable whatever was passed.
        object.__setattr__(self, "attributes", _pairs(self.attributes, "attributes"))
        object.__setattr__(self, "qualifiers", _pairs(self.qualifiers, "qualifiers"))
        if (self.gtin is None) == (self.key is None):
            raise MalformedInput("a Digital Link needs exactly one primary key: a GTIN or key=")
        if self.gtin is not None:
            object.__setattr__(self, "gtin", normalize_gtin(self.gtin))
            if self.qualifiers:
                raise MalformedInput("with a GTIN use cpv=, lot=, serial= or tpx=, not qualifiers=")
        else:
            self._check_other_key()
        path = self.path_elements
        entries = [_TABLE[code] for code, _ in path]
        for (_, value), entry in zip(path[1:], entries[1:], strict=True):
            _check_value(entry, value)
        codes = tuple(code for code, _ in path)
        if codes not in _DL_PATHS:
            raise MalformedInput(
                f"path qualifiers {', '.join(f'({c})' for c in codes[1:])} cannot go together: "
                f"{_describe_paths(codes[0])}"
            )
        present = set(codes)
        for code, value in self.attributes:
            entry = _lookup(code, permit_unknown=permit_unknown_ais)
            if entry is None:
                raise MalformedInput(f"({code}) is not a GS1 Application Identifier")
            if code in present:
                raise MalformedInput(f"AI ({code}) appears more than once in the Digital Link")
            present.add(code)
            for position in range(1, len(codes) + 1):
                if codes[:position] + (code,) + codes[position:] in _DL_PATHS:
                    field_name = _GTIN_QUALIFIER_FIELDS.get(code) if self.gtin else None
                    hint = f" (use {field_name}=)" if field_name else ""
                    raise MalformedInput(
                        f"{entry.label} belongs in the path, not the query string{hint}: "
                        f"/{'/…/'.join(codes[:position] + (code,))}/…"
                    )
            if not entry.is_dl_data_attribute:
                if any(code in path for path in _TABLE[codes[0]].dl_qualifier_paths or ()):
                    # A qualifier of this key that lost out to others in the path.
                    raise MalformedInput(
                        f"{entry.label} cannot qualify ({codes[0]}) together with "
                        f"{', '.join(f'({c})' for c in codes[1:])}: {_describe_paths(codes[0])}"
                    )
                raise MalformedInput(
                    f"{entry.label} cannot be a Digital Link data attribute (query string)"
                )
            _check_value(entry, value)
            entries.append(entry)
        _check_associations(self.elements, entries)

    def _check_other_key(self) -> None:
        assert self.key is not None
        if any(v is not None for v in (self.lot, self.serial, self.cpv, self.tpx)):
            raise MalformedInput(
                "cpv=, lot=, serial= and tpx= qualify a GTIN; with key= use qualifiers="
            )
        if not (isinstance(self.key, tuple) and len(self.key) == 2):
            raise MalformedInput("key must be an (AI, value) pair such as ('414', gln)")
        code, value = self.key
        entry = _lookup(code) if isinstance(code, str) else None
        if entry is None or not entry.is_dl_primary_key:
            raise MalformedInput(f"({code}) is not a GS1 Digital Link primary key")
        if code == "01":
            raise MalformedInput("give a GTIN as gtin=, not key=('01', …)")
        _check_value(entry, value)

    @property
    def primary_key(self) -> tuple[str, str]:
        """The primary key as (AI, value): ``("01", gtin14)`` for a product."""
        if self.gtin is not None:
            return ("01", self.gtin)
        assert self.key is not None
        return self.key

    @property
    def path_elements(self) -> tuple[tuple[str, str], ...]:
        """The primary key and its qualifiers, in path order."""
        if self.gtin is None:
            return (self.primary_key, *self.qualifiers)
        pairs = [("01", self.gtin)]
        for code in ("22", "10", "21", "235"):
            value = getattr(self, _GTIN_QUALIFIER_FIELDS[code])
            if value is not None:
                pairs.append((code, value))
        return tuple(pairs)

    @property
    def elements(self) -> tuple[tuple[str, str], ...]:
        """Every AI/value pair: the path's, then the attributes, in URI order."""
        return self.path_elements + self.attributes

    def path(self) -> str:
        """The canonical path, ``/01/<gtin14>[/22/<cpv>][/10/<lot>][/21/<serial>]``, each value
        percent-encoded as GS1 Digital Link requires (``/`` as ``%2F``, ``+`` as ``%2B`` …)."""
        return "".join(f"/{code}/{_percent_encode(value)}" for code, value in self.path_elements)

    def query(self) -> str:
        """The query string of data attributes, ``17=261231&3103=000195``, or ``""``."""
        return "&".join(f"{code}={_percent_encode(value)}" for code, value in self.attributes)

    def uri(self, base: str) -> str:
        """The full URI under ``base``, e.g. ``https://id.suyuan.example`` (a path prefix such
        as ``https://example.com/dl`` is kept; a trailing ``/`` is dropped)."""
        stem = _check_stem(base)
        query = self.query()
        return stem + self.path() + (f"?{query}" if query else "")

    def element_string(self) -> str:
        """The bracketed element string, ``(01)…(10)…(21)…``, in URI order."""
        return element_string(self.elements)

    @classmethod
    def from_elements(
        cls, elements: Iterable[tuple[str, str]], *, permit_unknown_ais: bool = False
    ) -> DigitalLink:
        """The Digital Link for a set of AIs (e.g. from a barcode), as GS1 builds it.

        The first AI that is a Digital Link primary key becomes the key; the longest qualifier
        sequence the data fully provides goes into the path; everything else becomes query
        attributes, fixed-length AIs first, each group in the order given. Exact repeats are
        dropped; an AI repeated with a different value is an error.
        """
        unique: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for code, value in elements:
            if code in seen:
                if seen[code] != value:
                    raise MalformedInput(
                        f"AI ({code}) appears twice with different values: "
                        f"'{seen[code]}' and '{value}'"
                    )
                continue
            seen[code] = value
            unique.append((code, value))
        key = next(
            (code for code, _ in unique if code in _TABLE and _TABLE[code].is_dl_primary_key), None
        )
        if key is None:
            raise MalformedInput(
                "no GS1 Digital Link primary key among the AIs (a GTIN (01), SSCC (00), GLN (414) …)"
            )
        # Among the key's valid paths pick the one with most qualifiers that are all present;
        # ties go to the first in lexical order of the AI sequence, as the GS1 syntax engine does.
        candidates = sorted(
            (p for p in _DL_PATHS if p[0] == key and all(q in seen for q in p[1:])),
            key=lambda p: " ".join(p),
        )
        best = max(candidates, key=len)
        path = [(code, seen[code]) for code in best]
        rest = [(code, value) for code, value in unique if code not in best]

        def is_fixed(code: str) -> bool:
            entry = _lookup(code, permit_unknown=permit_unknown_ais)
            return entry is not None and not entry.fnc1

        attributes = tuple(
            [p for p in rest if is_fixed(p[0])] + [p for p in rest if not is_fixed(p[0])]
        )
        if key == "01":
            fields = {_GTIN_QUALIFIER_FIELDS[code]: value for code, value in path[1:]}
            return cls(
                path[0][1], attributes=attributes, permit_unknown_ais=permit_unknown_ais, **fields
            )
        return cls(
            None,
            key=path[0],
            qualifiers=tuple(path[1:]),
            attributes=attributes,
            permit_unknown_ais=permit_unknown_ais,
        )


def _pairs(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    """(AI, value) pairs as a tuple of tuples; a mapping gives its items in order."""
    if isinstance(value, Mapping):
        value = value.items()
    if isinstance(value, str | bytes):
        raise MalformedInput(f"{what} must be (AI, value) pairs, not a string")
    try:
        pairs = tuple((code, text) for code, text in value)
    except (TypeError, ValueError) as exc:
        raise MalformedInput(f"{what} must be (AI, value) pairs") from exc
    for code, text in pairs:
        if not isinstance(code, str) or not isinstance(text, str):
            raise MalformedInput(f"{what} must be (AI, value) pairs of text")
    return pairs


def _check_stem(base: str) -> str:
    """The stem a URI is built on: ``http(s)://host[/path]``, without a trailing ``/``."""
    scheme = next((s for s in _SCHEMES if isinstance(base, str) and base.startswith(s)), None)
    if scheme is None:
        raise MalformedInput(f"the URI base must start with https:// or http://, got {base!r}")
    stem = base[:-1] if base.endswith("/") and len(base) > len(scheme) else base
    if not stem[len(scheme) :].split("/", 1)[0]:
        raise MalformedInput(f"the URI base {base!r} has no host name")
    for char in stem:
        if char not in _URI_CHARS or char in "?#":
            raise MalformedInput(f"the URI base {base!r} contains {_describe_char(char)}")
    return stem


def parse_digital_link(
    uri: str,
    *,
    permit_zero_suppressed_gtin: bool = False,
    permit_convenience_alphas: bool = False,
    permit_unknown_ais: bool = False,
) -> DigitalLink:
    """Parse and check an (uncompressed) GS1 Digital Link URI.

    The path is read backwards from its end to the rightmost ``/<key AI>/<value>`` pair: what
    comes before is the resolver's own stem and is not interpreted. Query parameters whose
    names are all digits must be known AIs and are data attributes; others (``linkType``,
    ``context`` …) and the fragment are ignored here. Raises ``MalformedInput`` saying exactly
    what is wrong.

    The ``permit_*`` options accept legacy forms GS1 no longer allows by default: GTIN-8/12/13
    instead of GTIN-14 in the URI, short names such as ``/gtin/`` and ``/lot/``, and AIs that
    are not in the AI table as query attributes.
    """
    if not isinstance(uri, str):
        raise MalformedInput(f"a Digital Link URI must be text, not {type(uri).__name__}")
    if not uri:
        raise MalformedInput("the Digital Link URI is empty")
    bad = _first_outside(uri, _URI_CHARS)
    if bad is not None:
        char = uri[bad]
        encoded = "".join(f"%{b:02X}" for b in char.encode("utf-8"))
        raise MalformedInput(
            f"{_describe_char(char)} at position {bad + 1} is not allowed in a URI; "
            f"percent-encode it as {encoded}"
        )
    scheme = next((s for s in _SCHEMES if uri.startswith(s)), None)
    if scheme is None:
        raise MalformedInput(
            f"a Digital Link starts with https:// or http:// (all lower or all upper case): {uri}"
        )
    rest = uri[len(scheme) :]
    slash = rest.find("/")
    host = rest if slash < 0 else rest[:slash]
    bad = _first_outside(host, _HOST_CHARS)
    if bad is not None:
        raise MalformedInput(f"the host name '{host}' contains {_describe_char(host[bad])}")
    if not host or slash < 0:
        raise MalformedInput(f"the URI has no host name and path: {uri}")
    remainder = rest[slash:].split("#", 1)[0]
    path, _, query = remainder.partition("?")

    if path.endswith("/"):
        raise MalformedInput(f"the path must not end with '/': {path}")
    segments = path.split("/")[1:]

    def resolve(segment: str) -> ApplicationIdentifier | None:
        if permit_convenience_alphas and segment in _CONVENIENCE_ALPHAS:
            return _TABLE[_CONVENIENCE_ALPHAS[segment]]
        return _lookup(segment)

    # Walk /AI/value pairs back from the end until a primary key; stop at the first segment
    # that is not an AI: everything before the key is the stem.
    start = None
    stopped_at = None
    for index in range(len(segments) - 2, -1, -2):
        entry = resolve(segments[index])
        if entry is None:
            stopped_at = segments[index]
            break
        if entry.is_dl_primary_key:
            start = index
            break
    if start is None:
        why = ""
        if stopped_at and re.fullmatch(r"[0-9]{2,4}", stopped_at):
            why = f" ({stopped_at}) is not a GS1 Application Identifier;"
        elif stopped_at == "":
            why = " the path has an empty segment ('//');"
        raise MalformedInput(
            f"no GS1 primary key found in the path '{path}':{why} a Digital Link path ends with "
            f"/<key AI>/<value> and its qualifiers, e.g. /01/<GTIN>/10/<lot>"
        )

    path_pairs: list[tuple[str, str]] = []
    for index in range(start, len(segments), 2):
        entry = resolve(segments[index])
        assert entry is not None  # the walk above already resolved every AI segment
        raw = segments[index + 1]
        where = f"the value of {entry.label} in the path"
        if raw == "":
            raise MalformedInput(f"{where} is empty")
        value = _percent_decode(raw, query=False, where=where)
        if entry.ai == "01":
            value = _expand_dl_gtin(value, permit_zero_suppressed_gtin, where)
        _check_length_only(entry, value)
        path_pairs.append((entry.ai, value))

    attributes: list[tuple[str, str]] = []
    for parameter in query.split("&"):
        name, equals, raw = parameter.partition("=")
        if not parameter or not equals or _first_outside(name, _DIGITS) is not None or not name:
            continue  # singletons and non-GS1 parameters (linkType=…) are not AI data
        entry = _lookup(name, permit_unknown=permit_unknown_ais)
        if entry is None:
            raise MalformedInput(
                f"query parameter '{name}' is all digits but not a GS1 Application Identifier"
            )
        where = f"the value of {entry.label} in the query string"
        if raw == "":
            raise MalformedInput(f"{where} is empty")
        value = _percent_decode(raw, query=True, where=where)
        if entry.ai == "01":
            value = _expand_dl_gtin(value, permit_zero_suppressed_gtin, where)
        _check_length_only(entry, value)
        attributes.append((name, value))

    codes = tuple(code for code, _ in path_pairs)
    if codes not in _DL_PATHS:
        raise MalformedInput(
            f"the path {''.join(f'/{c}/…' for c in codes)} is not a valid key-qualifier "
            f"sequence: {_describe_paths(codes[0])}"
        )
    everything = path_pairs + attributes
    for i, (code, _) in enumerate(everything):
        if any(code == other for other, _ in everything[:i]):
            raise MalformedInput(f"AI ({code}) appears more than once in the Digital Link")

    key_code, key_value = path_pairs[0]
    if key_code == "01":
        fields = {_GTIN_QUALIFIER_FIELDS[code]: value for code, value in path_pairs[1:]}
        return DigitalLink(
            key_value,
            attributes=tuple(attributes),
            permit_unknown_ais=permit_unknown_ais,
            **fields,
        )
    return DigitalLink(
        None,
        key=path_pairs[0],
        qualifiers=tuple(path_pairs[1:]),
        attributes=tuple(attributes),
        permit_unknown_ais=permit_unknown_ais,
    )


def _expand_dl_gtin(value: str, permit_zero_suppressed: bool, where: str) -> str:
    """GS1 Digital Link carries GTIN-14 only; zero-padding a GTIN-8/12/13 is a legacy option."""
    if len(value) in (8, 12, 13) and _first_outside(value, _DIGITS) is None:
        if permit_zero_suppressed:
            return value.zfill(14)
        raise MalformedInput(
            f"{where} must be a 14-digit GTIN; '{value}' has {len(value)} digits "
            f"(write it as {value.zfill(14)})"
        )
    return value


def _check_length_only(entry: ApplicationIdentifier, value: str) -> None:
    """Early length check, so a value far too long is reported as such rather than as a
    check-digit or pairing problem found later."""
    if not entry.min_length <= len(value) <= entry.max_length:
        _check_value(entry, value)


def normalize_link_type(value: str) -> str:
    """A GS1 link type in compact form (``gs1:pip``), from ``gs1:pip`` or its full IRI.

    Both the current vocabulary namespace ``https://ref.gs1.org/voc/`` and the older
    ``https://gs1.org/voc/`` are accepted, as resolvers and linksets in the wild use both.
    """
    if not isinstance(value, str):
        raise MalformedInput(f"a link type must be text, not {type(value).__name__}")
    for prefix in ("gs1:", GS1_VOCABULARY, "https://gs1.org/voc/", "http://gs1.org/voc/"):
        if value.startswith(prefix):
            term = value[len(prefix) :]
            if re.fullmatch(r"[a-z][A-Za-z0-9]*", term):
                return f"gs1:{term}"
    raise MalformedInput(f"'{value}' is not a GS1 link type such as gs1:pip or gs1:traceability")
