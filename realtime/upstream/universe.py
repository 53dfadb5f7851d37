"""The simulator's market: the symbols it knows, with names and price levels.

FMP only sends ticks for symbols it lists, and its REST API answers ``[]`` for the
rest; the simulator does the same with this universe (a few hundred US stocks and
ETFs, indices, crypto pairs, forex pairs and commodity futures, named as FMP names
them). Each symbol has a stable level: the table's typical price for well-known
symbols, else one derived from a hash of the symbol, so a simulated price is the
same kind of number after every restart (issue 16: no "crash" in the sparkline).
The seed only drives the random walk around that level, never the level itself.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
# A trading day starts at the US equity open: before 09:30 New York time the
# latest session (its open and its previous close) is still the previous day's.
SESSION_START = timedelta(hours=9, minutes=30)

ASSET_CLASSES = ("stock", "etf", "index", "crypto", "forex", "commodity")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One symbol of the universe, as FMP's quote endpoint describes it."""

    symbol: str
    name: str
    exchange: str
    asset_class: str
    level: float  # a typical price, the centre of the simulated prices

    @property
    def tick_size(self) -> float:
        """The price grid: cents for stocks, pips (1e-5) for forex, finer below 1."""
        if self.asset_class == "forex":
            return 0.001 if self.level >= 20 else 0.00001
        if self.level < 0.001:
            return 0.00000001
        if self.level < 1:
            return 0.00001
        if self.level < 10 and self.asset_class in ("crypto", "commodity"):
            return 0.0001
        return 0.01

    @property
    def decimals(self) -> int:
        return max(0, round(-math.log10(self.tick_size)))


# symbol|name|exchange|typical price|asset class
_TABLE = """\
AAPL|Apple Inc.|NASDAQ|190|stock
MSFT|Microsoft Corporation|NASDAQ|420|stock
NVDA|NVIDIA Corporation|NASDAQ|135|stock
GOOGL|Alphabet Inc.|NASDAQ|175|stock
GOOG|Alphabet Inc.|NASDAQ|176|stock
AMZN|Amazon.com, Inc.|NASDAQ|185|stock
META|Meta Platforms, Inc.|NASDAQ|560|stock
TSLA|Tesla, Inc.|NASDAQ|250|stock
BRK-B|Berkshire Hathaway Inc.|NYSE|460|stock
BRK.B|Berkshire Hathaway Inc.|NYSE|460|stock
BRK-A|Berkshire Hathaway Inc.|NYSE|690000|stock
AVGO|Broadcom Inc.|NASDAQ|170|stock
JPM|JPMorgan Chase & Co.|NYSE|220|stock
LLY|Eli Lilly and Company|NYSE|800|stock
V|Visa Inc.|NYSE|290|stock
UNH|UnitedHealth Group Incorporated|NYSE|520|stock
XOM|Exxon Mobil Corporation|NYSE|115|stock
MA|Mastercard Incorporated|NYSE|500|stock
JNJ|Johnson & Johnson|NYSE|155|stock
WMT|Walmart Inc.|NYSE|85|stock
PG|The Procter & Gamble Company|NYSE|165|stock
HD|The Home Depot, Inc.|NYSE|390|stock
COST|Costco Wholesale Corporation|NASDAQ|900|stock
ORCL|Oracle Corporation|NYSE|170|stock
MRK|Merck & Co., Inc.|NYSE|100|stock
ABBV|AbbVie Inc.|NYSE|180|stock
CVX|Chevron Corporation|NYSE|155|stock
KO|The Coca-Cola Company|NYSE|65|stock
PEP|PepsiCo, Inc.|NASDAQ|160|stock
BAC|Bank of America Corporation|NYSE|42|stock
NFLX|Netflix, Inc.|NASDAQ|750|stock
AMD|Advanced Micro Devices, Inc.|NASDAQ|140|stock
ADBE|Adobe Inc.|NASDAQ|500|stock
CRM|Salesforce, Inc.|NYSE|290|stock
TMO|Thermo Fisher Scientific Inc.|NYSE|540|stock
CSCO|Cisco Systems, Inc.|NASDAQ|57|stock
ACN|Accenture plc|NYSE|360|stock
MCD|McDonald's Corporation|NYSE|290|stock
ABT|Abbott Laboratories|NYSE|115|stock
LIN|Linde plc|NASDAQ|460|stock
DHR|Danaher Corporation|NYSE|240|stock
WFC|Wells Fargo & Company|NYSE|70|stock
INTC|Intel Corporation|NASDAQ|22|stock
TXN|Texas Instruments Incorporated|NASDAQ|200|stock
DIS|The Walt Disney Company|NYSE|110|stock
VZ|Verizon Communications Inc.|NYSE|42|stock
PM|Philip Morris International Inc.|NYSE|130|stock
INTU|Intuit Inc.|NASDAQ|640|stock
IBM|International Business Machines Corporation|NYSE|220|stock
QCOM|QUALCOMM Incorporated|NASDAQ|160|stock
CAT|Caterpillar Inc.|NYSE|390|stock
AMGN|Amgen Inc.|NASDAQ|290|stock
NEE|NextEra Energy, Inc.|NYSE|75|stock
GE|General Electric Company|NYSE|180|stock
PFE|Pfizer Inc.|NYSE|26|stock
CMCSA|Comcast Corporation|NASDAQ|40|stock
UNP|Union Pacific Corporation|NYSE|235|stock
SPGI|S&P Global Inc.|NYSE|500|stock
RTX|RTX Corporation|NYSE|120|stock
AMAT|Applied Materials, Inc.|NASDAQ|175|stock
NOW|ServiceNow, Inc.|NYSE|1000|stock
ISRG|Intuitive Surgical, Inc.|NASDAQ|520|stock
T|AT&T Inc.|NYSE|22|stock
LOW|Lowe's Companies, Inc.|NYSE|260|stock
GS|The Goldman Sachs Group, Inc.|NYSE|580|stock
HON|Honeywell International Inc.|NASDAQ|220|stock
BKNG|Booking Holdings Inc.|NASDAQ|5000|stock
UBER|Uber Technologies, Inc.|NYSE|72|stock
AXP|American Express Company|NYSE|290|stock
MS|Morgan Stanley|NYSE|125|stock
ELV|Elevance Health, Inc.|NYSE|400|stock
SYK|Stryker Corporation|NYSE|370|stock
BLK|BlackRock, Inc.|NYSE|1000|stock
PLD|Prologis, Inc.|NYSE|110|stock
MDT|Medtronic plc|NYSE|88|stock
LMT|Lockheed Martin Corporation|NYSE|530|stock
SCHW|The Charles Schwab Corporation|NYSE|78|stock
C|Citigroup Inc.|NYSE|68|stock
DE|Deere & Company|NYSE|420|stock
BA|The Boeing Company|NYSE|165|stock
TJX|The TJX Companies, Inc.|NYSE|120|stock
VRTX|Vertex Pharmaceuticals Incorporated|NASDAQ|470|stock
GILD|Gilead Sciences, Inc.|NASDAQ|92|stock
ADP|Automatic Data Processing, Inc.|NASDAQ|300|stock
MMC|Marsh & McLennan Companies, Inc.|NYSE|220|stock
PANW|Palo Alto Networks, Inc.|NASDAQ|190|stock
LRCX|Lam Research Corporation|NASDAQ|75|stock
ADI|Analog Devices, Inc.|NASDAQ|215|stock
MU|Micron Technology, Inc.|NASDAQ|100|stock
CB|Chubb Limited|NYSE|280|stock
SBUX|Starbucks Corporation|NASDAQ|98|stock
BMY|Bristol-Myers Squibb Company|NYSE|57|stock
REGN|Regeneron Pharmaceuticals, Inc.|NASDAQ|750|stock
MDLZ|Mondelez International, Inc.|NASDAQ|65|stock
KLAC|KLA Corporation|NASDAQ|700|stock
CI|The Cigna Group|NYSE|320|stock
SO|The Southern Company|NYSE|88|stock
PGR|The Progressive Corporation|NYSE|250|stock
FI|Fiserv, Inc.|NYSE|200|stock
MO|Altria Group, Inc.|NYSE|55|stock
DUK|Duke Energy Corporation|NYSE|112|stock
ANET|Arista Networks, Inc.|NYSE|100|stock
SNPS|Synopsys, Inc.|NASDAQ|520|stock
CDNS|Cadence Design Systems, Inc.|NASDAQ|290|stock
ZTS|Zoetis Inc.|NYSE|175|stock
SHW|The Sherwin-Williams Company|NYSE|370|stock
ICE|Intercontinental Exchange, Inc.|NYSE|160|stock
CL|Colgate-Palmolive Company|NYSE|92|stock
EQIX|Equinix, Inc.|NASDAQ|900|stock
BSX|Boston Scientific Corporation|NYSE|90|stock
CME|CME Group Inc.|NASDAQ|230|stock
WM|Waste Management, Inc.|NYSE|215|stock
ITW|Illinois Tool Works Inc.|NYSE|260|stock
TGT|Target Corporation|NYSE|130|stock
MCK|McKesson Corporation|NYSE|600|stock
PYPL|PayPal Holdings, Inc.|NASDAQ|80|stock
CSX|CSX Corporation|NASDAQ|34|stock
APH|Amphenol Corporation|NYSE|70|stock
NOC|Northrop Grumman Corporation|NYSE|490|stock
EOG|EOG Resources, Inc.|NYSE|130|stock
USB|U.S. Bancorp|NYSE|48|stock
FDX|FedEx Corporation|NYSE|280|stock
GD|General Dynamics Corporation|NYSE|280|stock
PNC|The PNC Financial Services Group, Inc.|NYSE|195|stock
ORLY|O'Reilly Automotive, Inc.|NASDAQ|1200|stock
MMM|3M Company|NYSE|130|stock
EMR|Emerson Electric Co.|NYSE|125|stock
NKE|NIKE, Inc.|NYSE|75|stock
MAR|Marriott International, Inc.|NASDAQ|280|stock
ABNB|Airbnb, Inc.|NASDAQ|135|stock
ROP|Roper Technologies, Inc.|NASDAQ|550|stock
AON|Aon plc|NYSE|370|stock
CRWD|CrowdStrike Holdings, Inc.|NASDAQ|350|stock
MRVL|Marvell Technology, Inc.|NASDAQ|90|stock
FTNT|Fortinet, Inc.|NASDAQ|95|stock
ADSK|Autodesk, Inc.|NASDAQ|300|stock
WDAY|Workday, Inc.|NASDAQ|260|stock
TEAM|Atlassian Corporation|NASDAQ|250|stock
SNOW|Snowflake Inc.|NYSE|170|stock
PLTR|Palantir Technologies Inc.|NASDAQ|70|stock
SHOP|Shopify Inc.|NYSE|110|stock
SQ|Block, Inc.|NYSE|80|stock
XYZ|Block, Inc.|NYSE|80|stock
COIN|Coinbase Global, Inc.|NASDAQ|260|stock
HOOD|Robinhood Markets, Inc.|NASDAQ|40|stock
SPOT|Spotify Technology S.A.|NYSE|450|stock
SNAP|Snap Inc.|NYSE|11|stock
PINS|Pinterest, Inc.|NYSE|32|stock
RBLX|Roblox Corporation|NYSE|55|stock
DDOG|Datadog, Inc.|NASDAQ|135|stock
NET|Cloudflare, Inc.|NYSE|110|stock
ZS|Zscaler, Inc.|NASDAQ|200|stock
MDB|MongoDB, Inc.|NASDAQ|260|stock
OKTA|Okta, Inc.|NASDAQ|85|stock
DOCU|DocuSign, Inc.|NASDAQ|85|stock
ZM|Zoom Communications, Inc.|NASDAQ|80|stock
TTD|The Trade Desk, Inc.|NASDAQ|110|stock
SMCI|Super Micro Computer, Inc.|NASDAQ|40|stock
ARM|Arm Holdings plc|NASDAQ|140|stock
ASML|ASML Holding N.V.|NASDAQ|720|stock
TSM|Taiwan Semiconductor Manufacturing Company Limited|NYSE|190|stock
BABA|Alibaba Group Holding Limited|NYSE|90|stock
PDD|PDD Holdings Inc.|NASDAQ|110|stock
JD|JD.com, Inc.|NASDAQ|38|stock
NIO|NIO Inc.|NYSE|5|stock
SONY|Sony Group Corporation|NYSE|21|stock
TM|Toyota Motor Corporation|NYSE|180|stock
NVO|Novo Nordisk A/S|NYSE|95|stock
SAP|SAP SE|NYSE|250|stock
SHEL|Shell plc|NYSE|66|stock
BP|BP p.l.c.|NYSE|30|stock
HSBC|HSBC Holdings plc|NYSE|47|stock
UL|Unilever PLC|NYSE|60|stock
AZN|AstraZeneca PLC|NASDAQ|70|stock
RIO|Rio Tinto Group|NYSE|62|stock
BHP|BHP Group Limited|NYSE|52|stock
F|Ford Motor Company|NYSE|11|stock
GM|General Motors Company|NYSE|50|stock
RIVN|Rivian Automotive, Inc.|NASDAQ|12|stock
LCID|Lucid Group, Inc.|NASDAQ|3|stock
DAL|Delta Air Lines, Inc.|NYSE|55|stock
UAL|United Airlines Holdings, Inc.|NASDAQ|85|stock
AAL|American Airlines Group Inc.|NASDAQ|15|stock
LUV|Southwest Airlines Co.|NYSE|30|stock
CCL|Carnival Corporation & plc|NYSE|24|stock
RCL|Royal Caribbean Cruises Ltd.|NYSE|220|stock
EXPE|Expedia Group, Inc.|NASDAQ|170|stock
DASH|DoorDash, Inc.|NASDAQ|170|stock
LYFT|Lyft, Inc.|NASDAQ|14|stock
EBAY|eBay Inc.|NASDAQ|62|stock
ETSY|Etsy, Inc.|NASDAQ|55|stock
CMG|Chipotle Mexican Grill, Inc.|NYSE|58|stock
YUM|Yum! Brands, Inc.|NYSE|135|stock
DPZ|Domino's Pizza, Inc.|NASDAQ|430|stock
LULU|lululemon athletica inc.|NASDAQ|330|stock
ROST|Ross Stores, Inc.|NASDAQ|145|stock
DG|Dollar General Corporation|NYSE|80|stock
DLTR|Dollar Tree, Inc.|NASDAQ|72|stock
KR|The Kroger Co.|NYSE|60|stock
WBA|Walgreens Boots Alliance, Inc.|NASDAQ|10|stock
CVS|CVS Health Corporation|NYSE|55|stock
HUM|Humana Inc.|NYSE|270|stock
HCA|HCA Healthcare, Inc.|NYSE|320|stock
MRNA|Moderna, Inc.|NASDAQ|40|stock
BIIB|Biogen Inc.|NASDAQ|160|stock
ILMN|Illumina, Inc.|NASDAQ|140|stock
DXCM|DexCom, Inc.|NASDAQ|75|stock
IDXX|IDEXX Laboratories, Inc.|NASDAQ|420|stock
EW|Edwards Lifesciences Corporation|NYSE|70|stock
HPQ|HP Inc.|NYSE|35|stock
HPE|Hewlett Packard Enterprise Company|NYSE|21|stock
DELL|Dell Technologies Inc.|NYSE|120|stock
WDC|Western Digital Corporation|NASDAQ|65|stock
STX|Seagate Technology Holdings plc|NASDAQ|100|stock
NXPI|NXP Semiconductors N.V.|NASDAQ|230|stock
ON|ON Semiconductor Corporation|NASDAQ|70|stock
MCHP|Microchip Technology Incorporated|NASDAQ|70|stock
GFS|GlobalFoundries Inc.|NASDAQ|40|stock
ACHR|Archer Aviation Inc.|NYSE|8|stock
SOFI|SoFi Technologies, Inc.|NASDAQ|14|stock
AFRM|Affirm Holdings, Inc.|NASDAQ|55|stock
U|Unity Software Inc.|NYSE|22|stock
EA|Electronic Arts Inc.|NASDAQ|145|stock
TTWO|Take-Two Interactive Software, Inc.|NASDAQ|185|stock
WBD|Warner Bros. Discovery, Inc.|NASDAQ|10|stock
PARA|Paramount Global|NASDAQ|11|stock
CHTR|Charter Communications, Inc.|NASDAQ|370|stock
TMUS|T-Mobile US, Inc.|NASDAQ|220|stock
KHC|The Kraft Heinz Company|NASDAQ|31|stock
GIS|General Mills, Inc.|NYSE|65|stock
HSY|The Hershey Company|NYSE|175|stock
STZ|Constellation Brands, Inc.|NYSE|240|stock
KDP|Keurig Dr Pepper Inc.|NASDAQ|33|stock
MNST|Monster Beverage Corporation|NASDAQ|52|stock
EL|The Estée Lauder Companies Inc.|NYSE|70|stock
CLX|The Clorox Company|NYSE|160|stock
KMB|Kimberly-Clark Corporation|NYSE|135|stock
ADM|Archer-Daniels-Midland Company|NYSE|52|stock
COP|ConocoPhillips|NYSE|110|stock
SLB|Schlumberger Limited|NYSE|42|stock
OXY|Occidental Petroleum Corporation|NYSE|52|stock
PSX|Phillips 66|NYSE|130|stock
MPC|Marathon Petroleum Corporation|NYSE|150|stock
VLO|Valero Energy Corporation|NYSE|135|stock
HAL|Halliburton Company|NYSE|28|stock
KMI|Kinder Morgan, Inc.|NYSE|26|stock
WMB|The Williams Companies, Inc.|NYSE|55|stock
FCX|Freeport-McMoRan Inc.|NYSE|42|stock
NEM|Newmont Corporation|NYSE|45|stock
DOW|Dow Inc.|NYSE|45|stock
DD|DuPont de Nemours, Inc.|NYSE|80|stock
APD|Air Products and Chemicals, Inc.|NYSE|310|stock
ECL|Ecolab Inc.|NYSE|245|stock
AMT|American Tower Corporation|NYSE|200|stock
CCI|Crown Castle Inc.|NYSE|95|stock
O|Realty Income Corporation|NYSE|56|stock
SPG|Simon Property Group, Inc.|NYSE|175|stock
PSA|Public Storage|NYSE|330|stock
D|Dominion Energy, Inc.|NYSE|55|stock
AEP|American Electric Power Company, Inc.|NASDAQ|95|stock
EXC|Exelon Corporation|NASDAQ|40|stock
SRE|Sempra|NYSE|85|stock
XEL|Xcel Energy Inc.|NASDAQ|68|stock
PCG|PG&E Corporation|NYSE|20|stock
A|Agilent Technologies, Inc.|NYSE|135|stock
B|Barrick Mining Corporation|NYSE|20|stock
E|Eni S.p.A.|NYSE|30|stock
X|United States Steel Corporation|NYSE|40|stock
K|Kellanova|NYSE|80|stock
L|Loews Corporation|NYSE|85|stock
M|Macy's, Inc.|NYSE|16|stock
COF|Capital One Financial Corporation|NYSE|180|stock
DFS|Discover Financial Services|NYSE|170|stock
BK|The Bank of New York Mellon Corporation|NYSE|78|stock
STT|State Street Corporation|NYSE|95|stock
TFC|Truist Financial Corporation|NYSE|44|stock
AIG|American International Group, Inc.|NYSE|75|stock
MET|MetLife, Inc.|NYSE|80|stock
PRU|Prudential Financial, Inc.|NYSE|120|stock
ALL|The Allstate Corporation|NYSE|190|stock
TRV|The Travelers Companies, Inc.|NYSE|250|stock
KKR|KKR & Co. Inc.|NYSE|150|stock
BX|Blackstone Inc.|NYSE|175|stock
APO|Apollo Global Management, Inc.|NYSE|160|stock
MCO|Moody's Corporation|NYSE|470|stock
MSCI|MSCI Inc.|NYSE|580|stock
NDAQ|Nasdaq, Inc.|NASDAQ|78|stock
UPS|United Parcel Service, Inc.|NYSE|130|stock
NSC|Norfolk Southern Corporation|NYSE|250|stock
ODFL|Old Dominion Freight Line, Inc.|NASDAQ|200|stock
WAB|Westinghouse Air Brake Technologies Corporation|NYSE|190|stock
ETN|Eaton Corporation plc|NYSE|340|stock
PH|Parker-Hannifin Corporation|NYSE|650|stock
CMI|Cummins Inc.|NYSE|350|stock
PCAR|PACCAR Inc|NASDAQ|105|stock
URI|United Rentals, Inc.|NYSE|800|stock
GWW|W.W. Grainger, Inc.|NYSE|1100|stock
FAST|Fastenal Company|NASDAQ|78|stock
CTAS|Cintas Corporation|NASDAQ|205|stock
PAYX|Paychex, Inc.|NASDAQ|140|stock
VRSK|Verisk Analytics, Inc.|NASDAQ|280|stock
IT|Gartner, Inc.|NYSE|500|stock
CTSH|Cognizant Technology Solutions Corporation|NASDAQ|78|stock
EPAM|EPAM Systems, Inc.|NYSE|230|stock
AKAM|Akamai Technologies, Inc.|NASDAQ|95|stock
VRSN|VeriSign, Inc.|NASDAQ|200|stock
GDDY|GoDaddy Inc.|NYSE|190|stock
TWLO|Twilio Inc.|NYSE|100|stock
HUBS|HubSpot, Inc.|NYSE|700|stock
VEEV|Veeva Systems Inc.|NYSE|230|stock
ROKU|Roku, Inc.|NASDAQ|75|stock
MELI|MercadoLibre, Inc.|NASDAQ|2000|stock
SE|Sea Limited|NYSE|110|stock
GRAB|Grab Holdings Limited|NASDAQ|5|stock
NU|Nu Holdings Ltd.|NYSE|13|stock
MSTR|MicroStrategy Incorporated|NASDAQ|350|stock
MARA|MARA Holdings, Inc.|NASDAQ|20|stock
RIOT|Riot Platforms, Inc.|NASDAQ|11|stock
GME|GameStop Corp.|NYSE|27|stock
AMC|AMC Entertainment Holdings, Inc.|NYSE|4|stock
BBY|Best Buy Co., Inc.|NYSE|90|stock
W|Wayfair Inc.|NYSE|45|stock
CHWY|Chewy, Inc.|NYSE|33|stock
SPY|SPDR S&P 500 ETF Trust|AMEX|560|etf
QQQ|Invesco QQQ Trust|NASDAQ|480|etf
IWM|iShares Russell 2000 ETF|AMEX|220|etf
DIA|SPDR Dow Jones Industrial Average ETF Trust|AMEX|420|etf
VOO|Vanguard S&P 500 ETF|AMEX|515|etf
VTI|Vanguard Total Stock Market ETF|AMEX|275|etf
GLD|SPDR Gold Shares|AMEX|240|etf
SLV|iShares Silver Trust|AMEX|28|etf
TLT|iShares 20+ Year Treasury Bond ETF|NASDAQ|92|etf
XLF|Financial Select Sector SPDR Fund|AMEX|47|etf
XLK|Technology Select Sector SPDR Fund|AMEX|230|etf
XLE|Energy Select Sector SPDR Fund|AMEX|90|etf
ARKK|ARK Innovation ETF|AMEX|55|etf
EEM|iShares MSCI Emerging Markets ETF|AMEX|43|etf
^GSPC|S&P 500|INDEX|5600|index
^DJI|Dow Jones Industrial Average|INDEX|41000|index
^IXIC|NASDAQ Composite|INDEX|17800|index
^NDX|NASDAQ 100|INDEX|19500|index
^RUT|Russell 2000|INDEX|2200|index
^VIX|CBOE Volatility Index|INDEX|16|index
^FTSE|FTSE 100|INDEX|8200|index
^GDAXI|DAX Performance Index|INDEX|18800|index
^FCHI|CAC 40|INDEX|7500|index
^N225|Nikkei 225|INDEX|38000|index
^HSI|Hang Seng Index|INDEX|19000|index
^STOXX50E|EURO STOXX 50|INDEX|4900|index
BTCUSD|Bitcoin USD|CRYPTO|60000|crypto
ETHUSD|Ethereum USD|CRYPTO|2600|crypto
SOLUSD|Solana USD|CRYPTO|150|crypto
XRPUSD|XRP USD|CRYPTO|0.6|crypto
BNBUSD|BNB USD|CRYPTO|580|crypto
DOGEUSD|Dogecoin USD|CRYPTO|0.12|crypto
ADAUSD|Cardano USD|CRYPTO|0.38|crypto
AVAXUSD|Avalanche USD|CRYPTO|27|crypto
DOTUSD|Polkadot USD|CRYPTO|4.5|crypto
LINKUSD|Chainlink USD|CRYPTO|11|crypto
LTCUSD|Litecoin USD|CRYPTO|70|crypto
TRXUSD|TRON USD|CRYPTO|0.16|crypto
SHIBUSD|Shiba Inu USD|CRYPTO|0.000017|crypto
MATICUSD|Polygon USD|CRYPTO|0.45|crypto
XLMUSD|Stellar USD|CRYPTO|0.1|crypto
BCHUSD|Bitcoin Cash USD|CRYPTO|340|crypto
UNIUSD|Uniswap USD|CRYPTO|7|crypto
ATOMUSD|Cosmos USD|CRYPTO|4.5|crypto
ETHBTC|Ethereum BTC|CRYPTO|0.043|crypto
USDTUSD|Tether USD|CRYPTO|1.0|crypto
EURUSD|EUR/USD|FOREX|1.08|forex
GBPUSD|GBP/USD|FOREX|1.27|forex
USDJPY|USD/JPY|FOREX|150|forex
USDCHF|USD/CHF|FOREX|0.88|forex
AUDUSD|AUD/USD|FOREX|0.66|forex
USDCAD|USD/CAD|FOREX|1.36|forex
NZDUSD|NZD/USD|FOREX|0.6|forex
EURGBP|EUR/GBP|FOREX|0.85|forex
EURJPY|EUR/JPY|FOREX|162|forex
GBPJPY|GBP/JPY|FOREX|190|forex
EURCHF|EUR/CHF|FOREX|0.95|forex
USDCNH|USD/CNH|FOREX|7.2|forex
USDMXN|USD/MXN|FOREX|18.5|forex
USDINR|USD/INR|FOREX|83.5|forex
USDKRW|USD/KRW|FOREX|1350|forex
USDSGD|USD/SGD|FOREX|1.32|forex
USDHKD|USD/HKD|FOREX|7.8|forex
USDSEK|USD/SEK|FOREX|10.5|forex
USDNOK|USD/NOK|FOREX|10.7|forex
USDTRY|USD/TRY|FOREX|34|forex
USDZAR|USD/ZAR|FOREX|18|forex
EURAUD|EUR/AUD|FOREX|1.64|forex
GCUSD|Gold Futures|COMMODITY|2400|commodity
SIUSD|Silver Futures|COMMODITY|28|commodity
CLUSD|Crude Oil Futures|COMMODITY|75|commodity
BZUSD|Brent Crude Oil Futures|COMMODITY|79|commodity
NGUSD|Natural Gas Futures|COMMODITY|2.5|commodity
HGUSD|Copper Futures|COMMODITY|4.2|commodity
ESUSD|E-Mini S&P 500 Futures|COMMODITY|5650|commodity
NQUSD|E-Mini Nasdaq 100 Futures|COMMODITY|19700|commodity
"""


def _parse(table: str) -> dict[str, Instrument]:
    instruments: dict[str, Instrument] = {}
    for line in table.splitlines():
        symbol, name, exchange, level, asset_class = line.split("|")
        assert asset_class in ASSET_CLASSES, line
        instruments[symbol] = Instrument(
            symbol, name, exchange, asset_class, float(level)
        )
    return instruments


INSTRUMENTS: dict[str, Instrument] = _parse(_TABLE)
SYMBOLS: frozenset[str] = frozenset(INSTRUMENTS)


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) from ``parts``, the same in every process and run.

    (Python's ``hash`` is salted per process, so it cannot give a stable level.)
    """
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def instrument(symbol: str) -> Instrument | None:
    """The universe's instrument for ``symbol`` (upper case), or None."""
    return INSTRUMENTS.get(symbol)


def synthetic_instrument(symbol: str) -> Instrument:
    """An instrument for a symbol outside the universe (the any-symbol switch).

    Its level is log-uniform in a plausible range for what the symbol looks like
    (``^`` an index, else a stock), derived from the symbol alone.
    """
    known = INSTRUMENTS.get(symbol)
    if known is not None:
        return known
    u = unit_hash("level", symbol)
    if symbol.startswith("^"):
        low, high, asset_class, exchange = 500.0, 20_000.0, "index", "INDEX"
    else:
        low, high, asset_class, exchange = 10.0, 500.0, "stock", "NASDAQ"
    level = round(low * (high / low) ** u, 2)
    return Instrument(symbol, f"{symbol} (simulated)", exchange, asset_class, level)


def trading_day(now: datetime | None = None) -> date:
    """The trading day in force at ``now``: New York date, rolling at 09:30."""
    now = now or datetime.now(UTC)
    return (now.astimezone(NEW_YORK) - SESSION_START).date()


@dataclass(frozen=True, slots=True)
class DayReference:
    """A symbol's reference prices for one trading day (stable across restarts)."""

    previous_close: float
    open: float
    year_high: float
    year_low: float
    price_avg50: float
    price_avg200: float
    shares: int  # outstanding (market cap = price * shares); 0 where FMP has none
    avg_volume: int


def day_reference(inst: Instrument, day: date) -> DayReference:
    """Previous close within 3 % of the level and an opening gap within 0.8 %."""

    def jitter(what: str, width: float) -> float:
        return 1 + width * (2 * unit_hash(what, inst.symbol, day.isoformat()) - 1)

    def grid(price: float) -> float:
        tick = inst.tick_size
        return round(max(tick, round(price / tick) * tick), inst.decimals)

    previous_close = grid(inst.level * jitter("close", 0.03))
    opening = grid(previous_close * jitter("open", 0.008))
    spread = 0.15 + 0.25 * unit_hash("range", inst.symbol)
    has_cap = inst.asset_class in ("stock", "etf", "crypto")
    market_cap = 10 ** (9 + 3.5 * unit_hash("cap", inst.symbol)) if has_cap else 0
    shares = int(market_cap / inst.level)
    volume = int(10 ** (5 + 3 * unit_hash("volume", inst.symbol)))
    return DayReference(
        previous_close=previous_close,
        open=opening,
        year_high=grid(inst.level * (1 + spread)),
        year_low=grid(inst.level * (1 - spread)),
        price_avg50=round(inst.level * jitter("avg50", 0.04), inst.decimals + 2),
        price_avg200=round(inst.level * jitter("avg200", 0.08), inst.decimals + 2),
        shares=shares,
        avg_volume=volume,
    )
