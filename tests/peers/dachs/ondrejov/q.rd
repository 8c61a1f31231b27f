<!-- The Ondrejov CCD700 spectra as GAVO DaCHS publishes them: SSAP + DataLink.

alvo's peer test (tests/peers/dachs.py) imports this RD into a local DaCHS,
so that our SSA/DataLink client is tested against the reference
implementation the real Ondrejov archive (voarchive.asu.cas.cz) runs on.

The inputs are the real spectra of ../shared/data/real/ondrejov/ in the
BINTABLE form (columns spectral [air Angstrom] and flux; header DS_IDPUB,
OBJECT, RA, DEC, TMID, TELAPSE, TDMIN1/TDMAX1 [m], APERTURE [deg]), copied
by the fixture into data/ of this resource directory (never committed).
As in the real archive, the publisher DIDs are the files' DS_IDPUB
(ivo://asu.cas.cz/stel/ccd700/...), not DaCHS's standard ones, so the
DataLink descriptor generator looks rows up by ssa_pubDID (useAccref False).
The access reference is the DataLink dlget URL: DaCHS builds an SDM
VOTable (or FITS with FORMAT=application/fits) from the file on the fly.
Started from `dachs start ssap+datalink` (DaCHS 2.7), with the template's
two bugs fixed (ssa_specstart/ssa_specend missing from the LOOP;
urllib.decode).
-->
<resource schema="ondrejov" resdir=".">
  <meta name="creationDate">2026-11-25T02:19:12Z</meta>
  <meta name="title">Ondrejov 2m CCD700 spectra (alvo test copy)</meta>
  <meta name="description">
    A handful of H-alpha spectra (6250-6770 Angstrom, air wavelengths,
    R about 13000) of Be and other early-type stars taken with the CCD700
    coude spectrograph of the Ondrejov 2 m Perek telescope, published the
    way the Ondrejov archive does it, for testing VO clients.
  </meta>
  <meta name="subject">be-stars</meta>
  <meta name="subject">spectroscopy</meta>
  <meta name="creator">Ondrejov Observatory</meta>
  <meta name="instrument">CCD700 coude spectrograph</meta>
  <meta name="facility">Ondrejov 2m Perek telescope</meta>
  <meta name="source">2017A&amp;C....18...14P</meta>
  <meta name="contentLevel">Research</meta>
  <meta name="type">Archive</meta>
  <meta name="coverage.waveband">Optical</meta>
  <meta name="ssap.dataSource">pointed</meta>
  <meta name="ssap.creationType">archival</meta>
  <meta name="productType">spectrum</meta>
  <meta name="ssap.testQuery">MAXREC=1</meta>

  <table id="raw_data" onDisk="True" adql="hidden"
      namePath="//ssap#instance">
    <LOOP listItems="ssa_dateObs ssa_dstitle ssa_targname ssa_pubDID
      ssa_length ssa_specres ssa_timeExt ssa_specstart ssa_specend
      ssa_aperture">
      <events>
        <column original="\item"/>
      </events>
    </LOOP>

    <mixin>//products#table</mixin>
    <mixin>//ssap#plainlocation</mixin>
    <mixin>//ssap#simpleCoverage</mixin>
    <FEED source="//scs#splitPosIndex"
      long="degrees(long(ssa_location))"
      lat="degrees(lat(ssa_location))"/>

    <column name="datalink" type="text"
      ucd="meta.ref.url"
      tablehead="Datalink"
      description="A link to a datalink document for this spectrum."
      verbLevel="15" displayHint="type=url">
      <property name="targetType"
       >application/x-votable+xml;content=datalink</property>
      <property name="targetTitle">Datalink</property>
    </column>
  </table>

  <data id="import">
    <recreateAfter>make_view</recreateAfter>
    <sources pattern="data/*.fits"/>

    <!-- The DataLink-form files keep their metadata in the BINTABLE's
      header (HDU 1), hence qnd False. -->
    <fitsProdGrammar qnd="False" hdu="1">
      <rowfilter procDef="//products#define">
        <bind key="table">"\schema.raw_data"</bind>
        <bind key="path">(base.getConfig("web", "serverURL")
          + "/\rdId/sdl/dlget?ID=" + urllib.parse.quote(@DS_IDPUB, safe=""))</bind>
        <!-- an SDM VOTable of ~1760 (spectral, flux) rows -->
        <bind key="fsize">80000</bind>
        <bind key="datalink">"\rdId#sdl"</bind>
        <bind key="mime">"application/x-votable+xml"</bind>
      </rowfilter>
    </fitsProdGrammar>

    <make table="raw_data">
      <rowmaker idmaps="*">
        <apply procDef="//ssap#fill-plainlocation">
          <bind key="ra">@RA</bind>
          <bind key="dec">@DEC</bind>
          <bind key="aperture">@APERTURE</bind>
        </apply>

        <map key="ssa_pubDID">@DS_IDPUB</map>
        <map key="ssa_dateObs">@TMID</map>
        <map key="ssa_dstitle">"{} {}".format(@OBJECT,
          @DS_IDPUB.rsplit("/", 1)[-1])</map>
        <map key="ssa_targname">@OBJECT</map>
        <map key="ssa_specstart">@TDMIN1</map>
        <map key="ssa_specend">@TDMAX1</map>
        <map key="ssa_length">@NAXIS2</map>
        <map key="ssa_timeExt">@TELAPSE</map>
        <map key="ssa_aperture">@APERTURE</map>
        <!-- CCD700: R about 13000, so a FWHM of lambda/R at H-alpha, in m -->
        <map key="ssa_specres">6563e-10/13000.</map>
        <map key="datalink">(base.getConfig("web", "serverURL")
          + "/\rdId/sdl/dlmeta?ID=" + urllib.parse.quote(@DS_IDPUB, safe=""))</map>
      </rowmaker>
    </make>
  </data>

  <table id="data" onDisk="True" adql="True">
    <meta name="_associatedDatalinkService">
      <meta name="serviceId">sdl</meta>
      <meta name="idColumn">ssa_pubDID</meta>
    </meta>

    <mixin
      sourcetable="raw_data"
      copiedcolumns="*"
      ssa_fluxunit="''"
      ssa_spectralunit="'Angstrom'"
      ssa_bandpass="'Optical'"
      ssa_collection="'CCD700'"
      ssa_fluxcalib="'UNCALIBRATED'"
      ssa_fluxucd="'phot.flux.density;em.wl'"
      ssa_speccalib="'ABSOLUTE'"
      ssa_spectralucd="'em.wl;obs.atmos'"
      ssa_targclass="'star'"
    >//ssap#view</mixin>

    <mixin
      calibLevel="1"
      coverage="ssa_region"
      sResolution="ssa_spaceres"
      oUCD="ssa_fluxucd"
      emUCD="ssa_spectralucd"
      >//obscore#publishSSAPMIXC</mixin>
  </table>

  <data id="make_view" auto="False">
    <make table="data"/>
  </data>

  <table id="instance" onDisk="False">
    <mixin ssaTable="data"
      spectralDescription="Air wavelength"
      fluxDescription="Relative flux (not calibrated)"
      >//ssap#sdm-instance</mixin>
    <meta name="description">An Ondrejov CCD700 spectrum around H-alpha</meta>
  </table>

  <!-- builds one spectrum instance (for datalink) from its file -->
  <data id="build_spectrum" auto="False">
    <embeddedGrammar>
      <iterator>
        <code>
          # sourceToken is the SSA row; accref is the file, inputs-relative
          from gavo.utils import pyfits
          sourcePath = os.path.join(
            base.getConfig("inputsDir"),
            urllib.parse.unquote(self.sourceToken["accref"]))
          with pyfits.open(sourcePath) as hdus:
            table = hdus[1].data
            for spectral, flux in zip(
                table["spectral"].tolist(), table["flux"].tolist()):
              yield {"spectral": spectral, "flux": flux}
        </code>
      </iterator>
    </embeddedGrammar>
    <make table="instance">
      <parmaker>
        <apply procDef="//ssap#feedSSAToSDM"/>
      </parmaker>
    </make>
  </data>

  <service id="sdl" allowed="dlget,dlmeta">
    <meta name="title">Ondrejov CCD700 Datalink Service</meta>
    <datalinkCore>
      <descriptorGenerator procDef="//soda#sdm_genDesc">
        <bind key="ssaTD">"\rdId#data"</bind>
        <bind key="useAccref">False</bind>
      </descriptorGenerator>
      <dataFunction procDef="//soda#sdm_genData">
        <bind key="builder">"\rdId#build_spectrum"</bind>
      </dataFunction>
      <FEED source="//soda#sdm_plainfluxcalib"/>
      <FEED source="//soda#sdm_cutout"/>
      <FEED source="//soda#sdm_format"/>
    </datalinkCore>
  </service>

  <service id="ssa" allowed="ssap.xml">
    <meta name="shortName">ondrejov SSAP</meta>
    <meta name="ssap.complianceLevel">full</meta>
    <publish render="ssap.xml" sets="ivo_managed"/>
    <ssapCore queriedTable="data">
      <FEED source="//ssap#hcd_condDescs"/>
    </ssapCore>
  </service>
</resource>
