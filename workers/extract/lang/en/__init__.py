"""English language data: country names beyond pycountry's."""

COUNTRY_NAMES: dict[str, list[str]] = {
    "US": ["United States", "United States of America", "America", "U.S.", "USA", "US"],
    "GB": ["Britain", "Great Britain", "United Kingdom", "UK", "U.K."],
    "RU": ["Russia"],
    "KP": ["North Korea", "DPRK"],
    "KR": ["South Korea"],
    "CN": ["China", "PRC"],
    "IR": ["Iran"],
    "SY": ["Syria"],
    "VN": ["Vietnam"],
    "TW": ["Taiwan"],
    "CZ": ["Czech Republic", "Czechia"],
    "AE": ["UAE", "United Arab Emirates"],
    "PS": ["Palestine"],
    "VE": ["Venezuela"],
    "BO": ["Bolivia"],
    "TZ": ["Tanzania"],
    "LA": ["Laos"],
    "MD": ["Moldova"],
    "NL": ["Netherlands", "Holland"],
}
