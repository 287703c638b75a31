{
	"patcher": {
		"fileversion": 1,
		"appversion": {
			"major": 8,
			"minor": 6,
			"revision": 0,
			"architecture": "x64",
			"modernui": 1
		},
		"classnamespace": "box",
		"rect": [
			100.0,
			100.0,
			2150.0,
			560.0
		],
		"openrect": [
			0.0,
			0.0,
			410.0,
			169.0
		],
		"bglocked": 0,
		"openinpresentation": 1,
		"default_fontsize": 10.0,
		"default_fontface": 0,
		"default_fontname": "Arial Bold",
		"gridonopen": 1,
		"gridsize": [
			8.0,
			8.0
		],
		"gridsnaponopen": 1,
		"objectsnaponopen": 1,
		"statusbarvisible": 2,
		"toolbarvisible": 1,
		"devicewidth": 410.0,
		"description": "MuseBridge: neural music models in Live's own time (needs `musebridge serve`).",
		"digest": "Genre transfer, call and response, MusicVAE morphs; plays answers on Live's beats.",
		"tags": "musebridge midi osc",
		"boxes": [
			{
				"box": {
					"id": "obj-midiin",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						30.0,
						30.0,
						45.0,
						22.0
					],
					"text": "midiin",
					"outlettype": [
						"int"
					]
				}
			},
			{
				"box": {
					"id": "obj-midiselect",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 8,
					"outlettype": [
						"",
						"",
						"",
						"int",
						"int",
						"int",
						"int",
						"int"
					],
					"patching_rect": [
						30.0,
						65.0,
						170.0,
						22.0
					],
					"text": "midiselect @ch all @note all"
				}
			},
			{
				"box": {
					"id": "obj-note-split",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						30.0,
						100.0,
						40.0,
						22.0
					],
					"text": "t l l"
				}
			},
			{
				"box": {
					"id": "obj-note-rev",
					"maxclass": "newobj",
					"numinlets": 2,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						90.0,
						135.0,
						50.0,
						22.0
					],
					"text": "zl rev"
				}
			},
			{
				"box": {
					"id": "obj-note-off",
					"maxclass": "newobj",
					"numinlets": 2,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						90.0,
						170.0,
						50.0,
						22.0
					],
					"text": "route 0"
				}
			},
			{
				"box": {
					"id": "obj-note-off-format",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						90.0,
						205.0,
						60.0,
						22.0
					],
					"text": "append 0"
				}
			},
			{
				"box": {
					"id": "obj-thru-gate",
					"maxclass": "newobj",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						160.0,
						205.0,
						50.0,
						22.0
					],
					"text": "gate 1 1"
				}
			},
			{
				"box": {
					"id": "obj-note-on-rev",
					"maxclass": "newobj",
					"numinlets": 2,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						160.0,
						240.0,
						50.0,
						22.0
					],
					"text": "zl rev"
				}
			},
			{
				"box": {
					"id": "obj-midiformat-thru",
					"maxclass": "newobj",
					"numinlets": 7,
					"numoutlets": 2,
					"outlettype": [
						"int",
						""
					],
					"patching_rect": [
						90.0,
						280.0,
						140.0,
						22.0
					],
					"text": "midiformat"
				}
			},
			{
				"box": {
					"id": "obj-prepend-note",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						30.0,
						135.0,
						50.0,
						22.0
					],
					"text": "prepend note_in",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-midiformat",
					"maxclass": "newobj",
					"numinlets": 7,
					"numoutlets": 2,
					"patching_rect": [
						30.0,
						460.0,
						110.0,
						22.0
					],
					"text": "midiformat",
					"outlettype": [
						"int",
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-midiout",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						30.0,
						495.0,
						50.0,
						22.0
					],
					"text": "midiout"
				}
			},
			{
				"box": {
					"id": "obj-js",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 7,
					"patching_rect": [
						30.0,
						400.0,
						380.0,
						22.0
					],
					"text": "js musebridge.js",
					"outlettype": [
						"",
						"",
						"",
						"",
						"",
						"",
						""
					],
					"saved_object_attributes": {
						"filename": "musebridge.js",
						"parameter_enable": 0
					}
				}
			},
			{
				"box": {
					"id": "obj-udpsend",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						170.0,
						460.0,
						140.0,
						22.0
					],
					"text": "udpsend 127.0.0.1 9000"
				}
			},
			{
				"box": {
					"id": "obj-udpreceive",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						330.0,
						330.0,
						100.0,
						22.0
					],
					"text": "udpreceive 0",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-thisdevice",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 3,
					"patching_rect": [
						170.0,
						30.0,
						90.0,
						22.0
					],
					"text": "live.thisdevice",
					"outlettype": [
						"bang",
						"int",
						"int"
					]
				}
			},
			{
				"box": {
					"id": "obj-init",
					"maxclass": "message",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						170.0,
						65.0,
						35.0,
						22.0
					],
					"text": "init"
				}
			},
			{
				"box": {
					"id": "obj-status",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						330.0,
						460.0,
						300.0,
						20.0
					],
					"text": "no daemon: MIDI thru",
					"presentation": 1,
					"presentation_rect": [
						8.0,
						146.0,
						390.0,
						20.0
					]
				}
			},
			{
				"box": {
					"id": "obj-title",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						330.0,
						30.0,
						100.0,
						20.0
					],
					"text": "MuseBridge",
					"presentation": 1,
					"presentation_rect": [
						8.0,
						4.0,
						120.0,
						20.0
					]
				}
			},
			{
				"box": {
					"id": "obj-mode",
					"maxclass": "live.menu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"",
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						450.0,
						100.0,
						90.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						8.0,
						26.0,
						90.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Mode",
							"parameter_shortname": "Mode",
							"parameter_enum": [
								"thru",
								"transfer",
								"continue",
								"interpolate",
								"sample"
							],
							"parameter_type": 2,
							"parameter_mmax": 4,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "thru: no model. transfer: the last phrase in another genre. continue: the model answers your phrase. interpolate: morph between captured A and B. sample: new phrases.",
							"parameter_annotation_name": "Mode",
							"parameter_modmode": 4,
							"parameter_invisible": 0
						}
					},
					"varname": "Mode",
					"annotation": "thru: no model. transfer: the last phrase in another genre. continue: the model answers your phrase. interpolate: morph between captured A and B. sample: new phrases.",
					"annotation_name": "Mode"
				}
			},
			{
				"box": {
					"id": "obj-prepend-mode",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						450.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend mode",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-genre",
					"maxclass": "live.menu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"",
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						560.0,
						100.0,
						90.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						8.0,
						46.0,
						90.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Genre",
							"parameter_shortname": "Genre",
							"parameter_enum": [
								"celtic",
								"folk",
								"chorale",
								"renaissance"
							],
							"parameter_type": 2,
							"parameter_mmax": 3,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Target genre of transfer (and the genre the model is conditioned on).",
							"parameter_annotation_name": "Genre",
							"parameter_modmode": 4,
							"parameter_invisible": 0
						}
					},
					"varname": "Genre",
					"annotation": "Target genre of transfer (and the genre the model is conditioned on).",
					"annotation_name": "Genre"
				}
			},
			{
				"box": {
					"id": "obj-prepend-genre",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						560.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend genre",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-temperature",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						670.0,
						100.0,
						44.0,
						48.0
					],
					"presentation": 1,
					"presentation_rect": [
						108.0,
						24.0,
						44.0,
						48.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Temperature",
							"parameter_shortname": "Temp",
							"parameter_type": 0,
							"parameter_mmin": 0.05,
							"parameter_mmax": 2.0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								1.0
							],
							"parameter_unitstyle": 1,
							"parameter_info": "Sampling temperature: low is safe, high is adventurous.",
							"parameter_annotation_name": "Temperature",
							"parameter_modmode": 2,
							"parameter_invisible": 0
						}
					},
					"varname": "Temperature",
					"annotation": "Sampling temperature: low is safe, high is adventurous.",
					"annotation_name": "Temperature"
				}
			},
			{
				"box": {
					"id": "obj-prepend-temperature",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						670.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend temperature",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-bars",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						780.0,
						100.0,
						40.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						8.0,
						66.0,
						40.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Bars",
							"parameter_shortname": "Bars",
							"parameter_type": 1,
							"parameter_mmin": 1.0,
							"parameter_mmax": 16.0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								4.0
							],
							"parameter_unitstyle": 0,
							"parameter_info": "Phrase length in bars (the answer length in continue mode).",
							"parameter_annotation_name": "Bars",
							"parameter_modmode": 4,
							"parameter_invisible": 0
						}
					},
					"varname": "Bars",
					"annotation": "Phrase length in bars (the answer length in continue mode).",
					"annotation_name": "Bars"
				}
			},
			{
				"box": {
					"id": "obj-prepend-bars",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						780.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend bars",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-position",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						890.0,
						100.0,
						44.0,
						48.0
					],
					"presentation": 1,
					"presentation_rect": [
						160.0,
						24.0,
						44.0,
						48.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Position",
							"parameter_shortname": "A>B",
							"parameter_type": 0,
							"parameter_mmin": 0.0,
							"parameter_mmax": 1.0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0.5
							],
							"parameter_unitstyle": 1,
							"parameter_info": "Interpolation point between clip A (0) and clip B (1).",
							"parameter_annotation_name": "Position",
							"parameter_modmode": 2,
							"parameter_invisible": 0
						}
					},
					"varname": "Position",
					"annotation": "Interpolation point between clip A (0) and clip B (1).",
					"annotation_name": "Position"
				}
			},
			{
				"box": {
					"id": "obj-prepend-position",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						890.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend position",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-capture-a",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1000.0,
						100.0,
						50.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						212.0,
						26.0,
						50.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Capture A",
							"parameter_shortname": "Cap A",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Capture the next phrase you play as interpolation clip A.",
							"parameter_annotation_name": "Capture A",
							"parameter_modmode": 0,
							"parameter_invisible": 0
						}
					},
					"varname": "Capture A",
					"mode": 0,
					"text": "Capture A",
					"texton": "Capture A",
					"annotation": "Capture the next phrase you play as interpolation clip A.",
					"annotation_name": "Capture A"
				}
			},
			{
				"box": {
					"id": "obj-prepend-capture-a",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1000.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend capture_a",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-capture-b",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1110.0,
						100.0,
						50.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						212.0,
						46.0,
						50.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Capture B",
							"parameter_shortname": "Cap B",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Capture the next phrase you play as interpolation clip B.",
							"parameter_annotation_name": "Capture B",
							"parameter_modmode": 0,
							"parameter_invisible": 0
						}
					},
					"varname": "Capture B",
					"mode": 0,
					"text": "Capture B",
					"texton": "Capture B",
					"annotation": "Capture the next phrase you play as interpolation clip B.",
					"annotation_name": "Capture B"
				}
			},
			{
				"box": {
					"id": "obj-prepend-capture-b",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1110.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend capture_b",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-to-clip",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1220.0,
						100.0,
						60.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						270.0,
						26.0,
						60.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Generate to Clip",
							"parameter_shortname": "To Clip",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Run the mode on the selected MIDI clip; the answer goes into the next empty clip slots.",
							"parameter_annotation_name": "Generate to Clip",
							"parameter_modmode": 0,
							"parameter_invisible": 0
						}
					},
					"varname": "Generate to Clip",
					"mode": 0,
					"text": "To Clip",
					"texton": "To Clip",
					"annotation": "Run the mode on the selected MIDI clip; the answer goes into the next empty clip slots.",
					"annotation_name": "Generate to Clip"
				}
			},
			{
				"box": {
					"id": "obj-prepend-to-clip",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1220.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend to_clip",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-panic",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1330.0,
						100.0,
						60.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						270.0,
						46.0,
						60.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Panic",
							"parameter_shortname": "Panic",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "All notes off, here and in the daemon.",
							"parameter_annotation_name": "Panic",
							"parameter_modmode": 0,
							"parameter_invisible": 0
						}
					},
					"varname": "Panic",
					"mode": 0,
					"text": "Panic",
					"texton": "Panic",
					"annotation": "All notes off, here and in the daemon.",
					"annotation_name": "Panic"
				}
			},
			{
				"box": {
					"id": "obj-prepend-panic",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1330.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend panic",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-monitor",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1440.0,
						100.0,
						60.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						270.0,
						66.0,
						60.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Monitor",
							"parameter_shortname": "Monitor",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								1
							],
							"parameter_info": "Also pass your played notes through while a model mode runs.",
							"parameter_annotation_name": "Monitor",
							"parameter_modmode": 4,
							"parameter_invisible": 0
						}
					},
					"varname": "Monitor",
					"mode": 1,
					"text": "Monitor",
					"texton": "Monitor",
					"annotation": "Also pass your played notes through while a model mode runs.",
					"annotation_name": "Monitor"
				}
			},
			{
				"box": {
					"id": "obj-prepend-monitor",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1440.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend monitor",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-osc-port",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						1550.0,
						100.0,
						50.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						340.0,
						26.0,
						50.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "OSC Port",
							"parameter_shortname": "Port",
							"parameter_type": 0,
							"parameter_mmin": 1024.0,
							"parameter_mmax": 65518.0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								9000.0
							],
							"parameter_unitstyle": 0,
							"parameter_info": "UDP port of `musebridge serve` (default 9000); answers come back on this port + 1 + Track.",
							"parameter_annotation_name": "OSC Port",
							"parameter_modmode": 0,
							"parameter_invisible": 1
						}
					},
					"varname": "OSC Port",
					"annotation": "UDP port of `musebridge serve` (default 9000); answers come back on this port + 1 + Track.",
					"annotation_name": "OSC Port"
				}
			},
			{
				"box": {
					"id": "obj-prepend-osc-port",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1550.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend osc_port",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-track",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"parameter_enable": 1,
					"patching_rect": [
						1660.0,
						100.0,
						50.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						340.0,
						46.0,
						50.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Track",
							"parameter_shortname": "Track",
							"parameter_type": 1,
							"parameter_mmin": 0.0,
							"parameter_mmax": 15.0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0.0
							],
							"parameter_unitstyle": 0,
							"parameter_info": "The daemon track this device plays (one per device instance).",
							"parameter_annotation_name": "Track",
							"parameter_modmode": 0,
							"parameter_invisible": 1
						}
					},
					"varname": "Track",
					"annotation": "The daemon track this device plays (one per device instance).",
					"annotation_name": "Track"
				}
			},
			{
				"box": {
					"id": "obj-prepend-track",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1660.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend track",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-loop",
					"maxclass": "live.toggle",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1770.0,
						100.0,
						15.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						212.0,
						68.0,
						15.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Loop",
							"parameter_shortname": "Loop",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Continue mode: repeat the last answer, bar-aligned, until you play a new call.",
							"parameter_annotation_name": "Loop",
							"parameter_modmode": 4,
							"parameter_invisible": 0
						}
					},
					"varname": "Loop",
					"annotation": "Continue mode: repeat the last answer, bar-aligned, until you play a new call.",
					"annotation_name": "Loop"
				}
			},
			{
				"box": {
					"id": "obj-prepend-loop",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1770.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend loop",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-label-loop",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1790.0,
						100.0,
						40.0,
						20.0
					],
					"presentation": 1,
					"presentation_rect": [
						228.0,
						66.0,
						40.0,
						18.0
					],
					"text": "Loop"
				}
			},
			{
				"box": {
					"id": "obj-mutate",
					"maxclass": "live.button",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"parameter_enable": 1,
					"patching_rect": [
						1880.0,
						100.0,
						15.0,
						15.0
					],
					"presentation": 1,
					"presentation_rect": [
						212.0,
						88.0,
						15.0,
						15.0
					],
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Mutate",
							"parameter_shortname": "Mutate",
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_type": 2,
							"parameter_mmax": 1,
							"parameter_initial_enable": 0,
							"parameter_info": "Continue mode: a new answer made from the last one (lands where the playing answer ends).",
							"parameter_annotation_name": "Mutate",
							"parameter_modmode": 0,
							"parameter_invisible": 0
						}
					},
					"varname": "Mutate",
					"annotation": "Continue mode: a new answer made from the last one (lands where the playing answer ends).",
					"annotation_name": "Mutate"
				}
			},
			{
				"box": {
					"id": "obj-prepend-mutate",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"patching_rect": [
						1880.0,
						200.0,
						100.0,
						22.0
					],
					"text": "prepend mutate",
					"outlettype": [
						""
					]
				}
			},
			{
				"box": {
					"id": "obj-label-mutate",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1900.0,
						100.0,
						40.0,
						20.0
					],
					"presentation": 1,
					"presentation_rect": [
						228.0,
						86.0,
						40.0,
						18.0
					],
					"text": "Mutate"
				}
			},
			{
				"box": {
					"id": "obj-label-mode",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1990.0,
						300.0,
						120.0,
						20.0
					],
					"text": "Mode / Genre / Bars",
					"presentation": 1,
					"presentation_rect": [
						8.0,
						84.0,
						120.0,
						18.0
					]
				}
			},
			{
				"box": {
					"id": "obj-label-port",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						2120.0,
						300.0,
						120.0,
						20.0
					],
					"text": "Port / Track",
					"presentation": 1,
					"presentation_rect": [
						336.0,
						66.0,
						70.0,
						18.0
					]
				}
			}
		],
		"lines": [
			{
				"patchline": {
					"source": [
						"obj-midiin",
						0
					],
					"destination": [
						"obj-midiselect",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-midiselect",
						7
					],
					"destination": [
						"obj-midiout",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-midiselect",
						6
					],
					"destination": [
						"obj-midiformat-thru",
						6
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-midiselect",
						0
					],
					"destination": [
						"obj-note-split",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-split",
						1
					],
					"destination": [
						"obj-note-rev",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-split",
						0
					],
					"destination": [
						"obj-prepend-note",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-rev",
						0
					],
					"destination": [
						"obj-note-off",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-off",
						0
					],
					"destination": [
						"obj-note-off-format",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-off-format",
						0
					],
					"destination": [
						"obj-midiformat-thru",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-off",
						1
					],
					"destination": [
						"obj-thru-gate",
						1
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-thru-gate",
						0
					],
					"destination": [
						"obj-note-on-rev",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-note-on-rev",
						0
					],
					"destination": [
						"obj-midiformat-thru",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-midiformat-thru",
						0
					],
					"destination": [
						"obj-midiout",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-js",
						5
					],
					"destination": [
						"obj-thru-gate",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-note",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-midiout",
						0
					],
					"source": [
						"obj-midiformat",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-midiformat",
						0
					],
					"source": [
						"obj-js",
						1
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-udpsend",
						0
					],
					"source": [
						"obj-js",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-udpreceive",
						0
					],
					"source": [
						"obj-js",
						2
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-udpreceive",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-init",
						0
					],
					"source": [
						"obj-thisdevice",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-init",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-status",
						0
					],
					"source": [
						"obj-js",
						3
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-mode",
						0
					],
					"source": [
						"obj-mode",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-mode",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-genre",
						0
					],
					"source": [
						"obj-genre",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-genre",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-temperature",
						0
					],
					"source": [
						"obj-temperature",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-temperature",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-bars",
						0
					],
					"source": [
						"obj-bars",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-bars",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-position",
						0
					],
					"source": [
						"obj-position",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-position",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-capture-a",
						0
					],
					"source": [
						"obj-capture-a",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-capture-a",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-capture-b",
						0
					],
					"source": [
						"obj-capture-b",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-capture-b",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-to-clip",
						0
					],
					"source": [
						"obj-to-clip",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-to-clip",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-panic",
						0
					],
					"source": [
						"obj-panic",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-panic",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-monitor",
						0
					],
					"source": [
						"obj-monitor",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-monitor",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-osc-port",
						0
					],
					"source": [
						"obj-osc-port",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-osc-port",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-track",
						0
					],
					"source": [
						"obj-track",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-track",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-loop",
						0
					],
					"source": [
						"obj-loop",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-loop",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-loop",
						0
					],
					"source": [
						"obj-js",
						4
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-genre",
						0
					],
					"source": [
						"obj-js",
						6
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-mutate",
						0
					],
					"source": [
						"obj-mutate",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-mutate",
						0
					]
				}
			}
		],
		"parameters": {
			"obj-mode": [
				"Mode",
				"Mode",
				0
			],
			"obj-genre": [
				"Genre",
				"Genre",
				0
			],
			"obj-temperature": [
				"Temperature",
				"Temp",
				0
			],
			"obj-bars": [
				"Bars",
				"Bars",
				0
			],
			"obj-position": [
				"Position",
				"A>B",
				0
			],
			"obj-capture-a": [
				"Capture A",
				"Cap A",
				0
			],
			"obj-capture-b": [
				"Capture B",
				"Cap B",
				0
			],
			"obj-to-clip": [
				"Generate to Clip",
				"To Clip",
				0
			],
			"obj-panic": [
				"Panic",
				"Panic",
				0
			],
			"obj-monitor": [
				"Monitor",
				"Monitor",
				0
			],
			"obj-osc-port": [
				"OSC Port",
				"Port",
				0
			],
			"obj-track": [
				"Track",
				"Track",
				0
			],
			"obj-loop": [
				"Loop",
				"Loop",
				0
			],
			"obj-mutate": [
				"Mutate",
				"Mutate",
				0
			],
			"parameterbanks": {
				"0": {
					"index": 0,
					"name": "MuseBridge",
					"parameters": [
						"Mode",
						"Genre",
						"Temperature",
						"Bars",
						"Position",
						"Capture A",
						"Capture B",
						"Generate to Clip"
					]
				},
				"1": {
					"index": 1,
					"name": "Call and Response",
					"parameters": [
						"Loop",
						"Mutate",
						"-",
						"-",
						"-",
						"-",
						"-",
						"-"
					]
				}
			},
			"inherited_shortname": 1
		},
		"dependency_cache": [
			{
				"name": "musebridge.js",
				"bootpath": "~/Music/Ableton/User Library/Presets/MIDI Effects/Max MIDI Effect/MuseBridge",
				"patcherrelativepath": ".",
				"type": "TEXT",
				"implicit": 1
			}
		],
		"latency": 0,
		"is_mpe": 0,
		"project": {
			"version": 1,
			"creationdate": 3810000000,
			"modificationdate": 3810000000,
			"viewrect": [
				0.0,
				0.0,
				300.0,
				500.0
			],
			"autoorganize": 1,
			"hideprojectwindow": 1,
			"showdependencies": 1,
			"autolocalize": 0,
			"contents": {
				"patchers": {},
				"code": {
					"musebridge.js": {
						"kind": "javascript",
						"local": 1
					}
				}
			},
			"layout": {},
			"searchpath": {},
			"detailsvisible": 0,
			"amxdtype": 1835887981,
			"readonly": 0,
			"devpathtype": 0,
			"devpath": ".",
			"sortmode": 0,
			"viewmode": 0,
			"includepackages": 0
		},
		"autosave": 0
	}
}
