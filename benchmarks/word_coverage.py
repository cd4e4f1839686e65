"""Word-list coverage of the `word_length` scorer's lexicon, measured on probe words.

Run: `python benchmarks/word_coverage.py`. Prints, for each source alone and for the combined
lexicon (`moebench.scorers._lexicon`), how many modern words and inflected forms it accepts
and how many misspellings / keyboard mashes it wrongly accepts. The probe words were written
for this check (current vocabulary from the last ~25 years, regular and irregular inflections,
common misspellings, keyboard runs and invented strings).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.table import Table

MODERN = """
    website websites smartphone smartphones email emails emailed emailing blog blogs blogger
    bloggers blogging podcast podcasts podcasting selfie selfies hashtag hashtags emoji
    emojis app apps online offline download downloads downloaded downloading upload uploaded
    uploading username usernames password passwords laptop laptops internet software
    hardware cybersecurity bitcoin cryptocurrency cryptocurrencies smartwatch livestream
    livestreaming streaming streamed startup startups crowdfunding texted texting tweeted
    tweeting tweet tweets unfriend unfriended spam spammed spamming malware firewall
    firewalls browser browsers chatbot chatbots touchscreen touchscreens webcam webcams
    ebook ebooks barcode barcodes keyboard keyboards screenshot screenshots tablet tablets
    wifi bluetooth hyperlink hyperlinks homepage homepages inbox inboxes login logout
    multitasking multitask outsourcing outsourced telecommute telecommuting videoconference
    broadband database databases dataset datasets spreadsheet spreadsheets workflow
    workflows desktop desktops netbook gigabyte gigabytes megabyte terabyte terabytes pixel
    pixels podcaster influencer influencers vlog vlogs vlogger meme memes emoticon emoticons
    ringtone ringtones voicemail voicemails antivirus cyberspace cyberattack hacker hackers
    hacking hacked phishing google googled googling unfollow retweet retweeted livestreamed
    microchip microchips nanotechnology biotech biotechnology genome genomes cloning
    recyclable recycling recycled sustainability gluten vegan vegans kombucha quinoa hummus
    sushi carpool carpooling rideshare geocaching skateboard snowboard snowboarding
    paintball bobblehead bromance staycation
""".split()

INFLECTED = """
    apples cats dogs boxes babies knives children mice geese teeth feet women men leaves
    wolves walked walking jumped jumping swimming swam studied studies carries carried tried
    tries running ran eaten eating bigger biggest happier happiest quickly slowly
    beautifully thinking thought bought brought taught caught houses horses churches wishes
    heroes potatoes tomatoes echoes analyses crises criteria phenomena cacti fungi played
    playing plays stopped stopping planned planning admitted preferred occurred referring
    committed writes wrote written writing rode ridden driving drove driven flies flying
    flew flown sang sung singing opened opening opens closed closing closes listened
    listening watched watching washed washing talked talking cleaner cleanest stronger
    strongest larger largest simpler simplest faster fastest darker darkest quieter
    elephants giraffes monkeys tigers lions rabbits turtles dolphins penguins butterflies
    spiders insects computers phones gardens windows doors tables chairs pencils notebooks
    teachers students doctors nurses painted painting paintings dancing danced dancer
    dancers singer singers builder builders building buildings happiness kindness darkness
    sadness friendship friendships leadership childhood neighborhoods neighbourhood colour
    colours favourite favourites organise organised realise realised centre centres theatre
    metre metres
""".split()

NEGATIVE = """
    recieve recieved definately seperate seperated occured untill teh beleive accomodate
    goverment tommorow neccessary enviroment arguement embarass existance independant truely
    wierd cemetary concensus foriegn freind grammer harrass hieght ignorence knowlege libary
    maintenence millenium mispell noticable occassion persue posession priviledge reccomend
    relevent rythm sieze supercede suprise threshhold tounge vaccuum acheive adress begining
    beleif comming commited concious curiousity dissapoint dilemna ecstacy excercise familar
    finaly flourescent gaurd happend immediatly incidently liason lisence medecine
    mischievious neice paralell percieve playright prefered questionaire recomend refered
    religous rember resistence sentance sincerly tendancy tomatos potatos truley
    unfortunatly unneccessary vegtable wellcome writting yeild asdf asdfg asdfgh asdfjkl
    sdfgh dfghj fghjk ghjkl hjkl jkjk zxcvb xcvbn cvbnm bnmvc mnbvc lkjhg poiuy oiuyt iuytr
    ytrewq qwertyu wertyu ertyui rtyuio tyuiop qazwsx wsxedc edcrfv rfvtgb tgbyhn yhnujm
    ujmik plokij aaaaa zzzzz xkcdq blorft snarfle grobnik fwoop plimber zorbent quixly
    vrumble kreenth tharpish splonky drizzlex flumbert wizzle brumpf glarnish thwompy zwivel
    mrrph pfftt hmmmm ahhhh ugghh grrrr brrrr shhhh
""".split()


def _sources() -> dict[str, Callable[[str], bool]]:
    from english_words import get_english_words_set

    from moebench.scorers import _lexicon

    web2 = get_english_words_set(["web2"], lower=True, alpha=True)
    gcide = get_english_words_set(["gcide"], lower=True, alpha=True)
    return {
        "english-words web2+gcide": lambda w: w in web2 or w in gcide,
        "hunspell en_US (spylls)": lambda w: bool(_lexicon._hunspell().lookup(w)),
        "wordfreq zipf >= 2": lambda w: _lexicon.zipf(w) >= _lexicon.MIN_ZIPF,
        "moebench lexicon (combined)": _lexicon.is_word,
    }


def main() -> None:
    """Print accepted/rejected counts per source and the combined lexicon's misses."""
    table = Table(title="word coverage on probe words")
    for col in ("source", "modern accepted", "inflected accepted", "bad words accepted"):
        table.add_column(col, justify="left" if col == "source" else "right")
    misses: list[str] = []
    for name, accepts in _sources().items():
        cells = [f"{sum(map(accepts, ws))}/{len(ws)} ({sum(map(accepts, ws)) / len(ws):.0%})"
                 for ws in (MODERN, INFLECTED, NEGATIVE)]
        table.add_row(name, *cells)
        misses = [w for w in MODERN + INFLECTED if not accepts(w)] + [
            f"+{w}" for w in NEGATIVE if accepts(w)]
    Console().print(table)
    print("combined lexicon misses (+ = bad word accepted):", " ".join(misses) or "none")


if __name__ == "__main__":
    main()
